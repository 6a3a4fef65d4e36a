package cookie

import (
	"strings"
	"unsafe"
)

// The tokenizer and the attribute classifier: the only code in the package that splits a Set-Cookie line.
//
// The filter runs this package compiled to WebAssembly, where Go's code generator turns every jump between basic
// blocks into a dispatch through a br_table: a byte-at-a-time loop with a branch per byte runs about ten times
// slower than natively. The tokenizer therefore checks a whole line for control characters eight bytes at a time
// (hasCTL) before splitting it, finds separators with strings.IndexByte, which the runtime implements in
// WebAssembly directly, and classifies attribute names with whole-word comparisons.

// Size limits of RFC 6265bis §5.6, as Chromium and Firefox enforce them.
const (
	// maxNameValueOctets: a cookie whose name plus value is longer is
	// ignored entirely.
	maxNameValueOctets = 4096
	// maxAttributeValueOctets: an attribute whose value is longer is ignored
	// (the rest of the cookie still counts).
	maxAttributeValueOctets = 1024
)

// isWSP reports SP and HTAB, the only whitespace RFC 6265bis trims.
func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// trimWSP removes leading and trailing SP and HTAB.
func trimWSP(s string) string {
	start, end := 0, len(s)
	for start < end && isWSP(s[start]) {
		start++
	}
	for end > start && isWSP(s[end-1]) {
		end--
	}
	return s[start:end]
}

// isCTL reports the octets that make RFC 6265bis §5.6 step 1 ignore a whole
// set-cookie-string: %x00-08, %x0A-1F and %x7F (HTAB is allowed).
func isCTL(c byte) bool { return (c < 0x20 && c != '\t') || c == 0x7f }

func containsCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if isCTL(s[i]) {
			return true
		}
	}
	return false
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasCTL is containsCTL eight bytes at a time, with one branch per eight bytes: in WebAssembly every branch taken
// costs a dispatch. A byte below 0x20 or equal to 0x7f sets its high bit in one of the two terms of ctlBits; the
// bits of the whole line are gathered first, and only a line with one set (a CTL, or an HTAB, which is allowed) is
// looked at byte by byte.
func hasCTL(s string) bool {
	if len(s) < 8 {
		return containsCTL(s)
	}
	p := unsafe.Pointer(unsafe.StringData(s))
	last := len(s) - 8
	var bits uint64
	for i := 0; i < last; i += 8 {
		bits |= ctlBits(*(*uint64)(unsafe.Add(p, i)))
	}
	bits |= ctlBits(*(*uint64)(unsafe.Add(p, last))) // the last eight bytes, overlapping the loop's last word
	return bits&msb != 0 && containsCTL(s)
}

// ctlBits sets the high bit of some byte of x when x holds a byte below 0x20 or equal to 0x7f (the classic "has
// less than" and "has zero byte" tests); it may also set it for other bytes next to one, never without one.
func ctlBits(x uint64) uint64 {
	y := x ^ (0x7f * lsb)
	return (x-0x20*lsb)&^x | (y-lsb)&^y
}

// equalFoldASCII compares s with lower, an ASCII lowercase literal, ignoring
// ASCII case only. Browsers match attribute names and prefixes this way;
// strings.EqualFold would also accept Unicode look-alikes such as U+017F
// ("ſ") for 's' and U+212A (Kelvin sign) for 'k'.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasPrefixFoldASCII is equalFoldASCII for a prefix.
func hasPrefixFoldASCII(s, lowerPrefix string) bool {
	return len(s) >= len(lowerPrefix) && equalFoldASCII(s[:len(lowerPrefix)], lowerPrefix)
}

// cookiePair is the name-value-pair of a set-cookie-string (RFC 6265bis §5.6
// steps 2–5): everything before the first ';', split at the first '='.
type cookiePair struct {
	name  string // trimmed of SP/HTAB
	value string // trimmed of SP/HTAB; quotes, if any, kept
	end   int    // offset of the first ';' in the line, or len(line)
}

// parsePair extracts the name-value-pair of a line without CTLs (see hasCTL; a line with one is ignored by
// browsers, §5.6 step 1) and reports whether it makes the line a cookie this package will touch. It does not when:
//
//   - the pair has no '=': RFC 6265bis would store a nameless cookie, but
//     RFC 6265 and net/http reject it, and a nameless cookie cannot be
//     selected by name;
//   - the name is empty ("=v" or "="): the same reasoning; "=" alone is
//     ignored by browsers anyway (§5.6 step 6);
//   - name plus value exceed 4096 octets: browsers ignore the cookie (§5.6).
//
// An empty value ("a=") is a valid cookie.
func parsePair(line string) (cookiePair, bool) {
	end := strings.IndexByte(line, ';')
	if end < 0 {
		end = len(line)
	}
	equals := strings.IndexByte(line[:end], '=')
	if equals < 0 {
		return cookiePair{}, false
	}
	p := cookiePair{name: trimWSP(line[:equals]), value: trimWSP(line[equals+1 : end]), end: end}
	if p.name == "" || len(p.name)+len(p.value) > maxNameValueOctets {
		return cookiePair{}, false
	}
	return p, true
}

// attribute is one cookie-av of a set-cookie-string (RFC 6265bis §5.6.1
// "unparsed-attributes"), located in the line so that it can be kept,
// replaced or dropped as a unit.
type attribute struct {
	start int // offset of the ';' that introduces the attribute
	end   int // offset of the next ';', or the end of the line
	// textStart and textEnd delimit the attribute without its surrounding
	// whitespace; replacing line[textStart:textEnd] keeps the spacing.
	textStart, textEnd int
	kind               attributeKind
	value              string // trimmed; "" when there is no '=', and for attrUnknown
}

// honoured reports whether browsers take the attribute into account at all:
// RFC 6265bis §5.6 ignores a cookie-av whose value exceeds 1024 octets.
func (a *attribute) honoured() bool { return len(a.value) <= maxAttributeValueOctets }

// scan parses the attribute introduced by the ';' at line[start] of a line without CTLs. An attribute this package
// does not reason about costs only finding its bounds. (strings.IndexByte is called here rather than through a
// helper: in WebAssembly a call that is not inlined costs more than finding the ';'.)
func (a *attribute) scan(line string, start int) {
	end := len(line)
	if i := strings.IndexByte(line[start+1:], ';'); i >= 0 {
		end = start + 1 + i
	}
	ts, te := start+1, end
	for ts < te && isWSP(line[ts]) {
		ts++
	}
	for te > ts && isWSP(line[te-1]) {
		te--
	}
	a.start, a.end, a.textStart, a.textEnd = start, end, ts, te
	a.kind, a.value = classify(line, ts, te)
}

// attributeKind names the attributes this package reasons about; every
// other attribute is attrUnknown and is preserved in place, byte-for-byte.
type attributeKind uint8

const (
	attrUnknown attributeKind = iota
	attrSecure
	attrHTTPOnly
	attrPartitioned
	attrSameSite
	attrPath
	attrDomain
)

// word packs up to eight bytes of s, from offset 0, little-endian, each ORed with 0x20: for ASCII letters that is
// the lowercase letter, and no other byte maps onto a lowercase letter except that letter's uppercase form.
func word(s string) uint64 {
	var w uint64
	if len(s) >= 8 {
		w = *(*uint64)(unsafe.Pointer(unsafe.StringData(s)))
		return w | 0x20*lsb
	}
	for i := len(s) - 1; i >= 0; i-- {
		w = w<<8 | uint64(s[i]|0x20)
	}
	return w
}

// wordAt is word(line[i:]) for the bytes that matter to classify: the first min(8, len(line)-i), read with one
// load wherever the line has eight bytes to read (the bytes above them are not zero, unlike word's; classify looks
// only at as many bytes as the text has). A byte loop costs a dispatch per byte in WebAssembly, one load does not.
func wordAt(line string, i int) uint64 {
	if i+8 <= len(line) {
		return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.StringData(line)), i)) | 0x20*lsb
	}
	return wordNearEnd(line, i)
}

// wordNearEnd is wordAt for an offset less than eight bytes from the end of the line.
func wordNearEnd(line string, i int) uint64 {
	if len(line) < 8 {
		return word(line[i:])
	}
	// The line's last eight bytes, shifted so that line[i] comes first.
	w := *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.StringData(line)), len(line)-8))
	return w>>(8*(8-(len(line)-i))) | 0x20*lsb
}

// lit packs a lowercase literal of up to eight bytes like word.
func lit(s string) uint64 {
	var w uint64
	for i := len(s) - 1; i >= 0; i-- {
		w = w<<8 | uint64(s[i])
	}
	return w
}

// The first four letters of each name this package knows (a little-endian word, as wordAt packs them), and the
// whole of its first eight.
const (
	first4Path     = 'p' | 'a'<<8 | 't'<<16 | 'h'<<24
	first4Secure   = 's' | 'e'<<8 | 'c'<<16 | 'u'<<24
	first4Domain   = 'd' | 'o'<<8 | 'm'<<16 | 'a'<<24
	first4HTTPOnly = 'h' | 't'<<8 | 't'<<16 | 'p'<<24
	first4SameSite = 's' | 'a'<<8 | 'm'<<16 | 'e'<<24
	first4Part     = 'p' | 'a'<<8 | 'r'<<16 | 't'<<24
)

var (
	litSecure      = lit("secure")
	litDomain      = lit("domain")
	litHTTPOnly    = lit("httponly")
	litSameSite    = lit("samesite")
	litPartitioned = lit("partitio")
	litNed         = lit("ned")
)

const (
	mask3 = 1<<24 - 1
	mask6 = 1<<48 - 1
)

// classify returns the kind of an attribute from its text line[ts:te] (trimmed of whitespace), ASCII-case-
// insensitively, and for a kind other than attrUnknown its value. The name is the text before the first '=',
// trimmed, and the value the text after it, trimmed ("" without an '='). Every name this package knows is made of
// letters, which makes the OR-0x20 folding of wordAt exact, and begins with four letters no other shares: one
// switch on the text's first four bytes picks the candidate (a few comparisons, where testing each name in turn
// cost a branch per name in WebAssembly), and the name is that candidate when only whitespace stands between it
// and the '=' (or the end). Expires and Max-Age are not classified: they are never changed, and deletion cookies
// need no special casing.
func classify(line string, ts, te int) (attributeKind, string) {
	text := line[ts:te]
	if len(text) < 4 {
		return attrUnknown, ""
	}
	w := wordAt(line, ts)
	var kind attributeKind
	var n int
	switch uint32(w) {
	case first4Path:
		kind, n = attrPath, 4
	case first4Secure:
		kind, n = attrSecure, 6
		if len(text) < 6 || w&mask6 != litSecure {
			return attrUnknown, ""
		}
	case first4Domain:
		kind, n = attrDomain, 6
		if len(text) < 6 || w&mask6 != litDomain {
			return attrUnknown, ""
		}
	case first4HTTPOnly:
		kind, n = attrHTTPOnly, 8
		if len(text) < 8 || w != litHTTPOnly {
			return attrUnknown, ""
		}
	case first4SameSite:
		kind, n = attrSameSite, 8
		if len(text) < 8 || w != litSameSite {
			return attrUnknown, ""
		}
	case first4Part:
		kind, n = attrPartitioned, 11
		if len(text) < 11 || w != litPartitioned || wordAt(line, ts+8)&mask3 != litNed {
			return attrUnknown, ""
		}
	default:
		return attrUnknown, ""
	}
	i := n
	for i < len(text) && isWSP(text[i]) {
		i++
	}
	switch {
	case i == len(text): // the whole text is the name (trimmed text never ends in whitespace, so i == n)
		return kind, ""
	case text[i] != '=':
		return attrUnknown, "" // a longer name, such as "Secure qux" or "Paths"
	}
	i++
	for i < len(text) && isWSP(text[i]) {
		i++
	}
	return kind, text[i:]
}
