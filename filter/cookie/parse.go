package cookie

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

// Octet classes for the single pass over a line: the octets the parser
// stops at. Most octets have none, so the scanning loop costs one table
// lookup per byte, with no separate pass to look for CTLs.
const (
	classCTL = 1 + iota
	classSemicolon
	classEquals
)

var byteClasses = func() (t [256]uint8) {
	for c := range t {
		if isCTL(byte(c)) {
			t[c] = classCTL
		}
	}
	t[';'] = classSemicolon
	t['='] = classEquals
	return t
}()

// scanSegment scans line from start up to the next ';' and returns the
// offset of that ';' (or len(line)) and of the first '=' before it (-1 if
// none). ok is false when a CTL comes first; end is then its offset.
func scanSegment(line string, start int) (end, equals int, ok bool) {
	equals = -1
	for i := start; i < len(line); i++ {
		switch byteClasses[line[i]] {
		case 0:
		case classSemicolon:
			return i, equals, true
		case classEquals:
			if equals < 0 {
				equals = i
			}
		default:
			return i, equals, false
		}
	}
	return len(line), equals, true
}

// parsePair extracts the name-value-pair and reports whether it makes the
// line a cookie this package will touch. It does not when:
//
//   - the pair contains a CTL other than HTAB: browsers ignore the line
//     (§5.6 step 1; scanCookie checks the attributes);
//   - the pair has no '=': RFC 6265bis would store a nameless cookie, but
//     RFC 6265 and net/http reject it, and a nameless cookie cannot be
//     selected by name;
//   - the name is empty ("=v" or "="): the same reasoning; "=" alone is
//     ignored by browsers anyway (§5.6 step 6);
//   - name plus value exceed 4096 octets: browsers ignore the cookie (§5.6).
//
// An empty value ("a=") is a valid cookie.
func parsePair(line string) (cookiePair, bool) {
	end, equals, ok := scanSegment(line, 0)
	if !ok || equals < 0 {
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
	name               string // trimmed
	value              string // trimmed; "" when there is no '='
	kind               attributeKind
}

// honoured reports whether browsers take the attribute into account at all:
// RFC 6265bis §5.6 ignores a cookie-av whose value exceeds 1024 octets.
func (a attribute) honoured() bool { return len(a.value) <= maxAttributeValueOctets }

// nextAttribute parses the attribute introduced by the ';' at line[start].
// ok is false when the attribute contains a CTL.
func nextAttribute(line string, start int) (a attribute, ok bool) {
	end, equals, ok := scanSegment(line, start+1)
	a = attribute{start: start, end: end, textStart: start + 1, textEnd: end}
	for a.textStart < a.textEnd && isWSP(line[a.textStart]) {
		a.textStart++
	}
	for a.textEnd > a.textStart && isWSP(line[a.textEnd-1]) {
		a.textEnd--
	}
	if equals >= 0 {
		a.name, a.value = trimWSP(line[a.textStart:equals]), trimWSP(line[equals+1:a.textEnd])
	} else {
		a.name = line[a.textStart:a.textEnd]
	}
	a.kind = kindOf(a.name)
	return a, ok
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

// kindOf classifies a trimmed attribute name, ASCII-case-insensitively.
// Expires and Max-Age are not classified: they are never changed, and
// deletion cookies need no special casing.
func kindOf(name string) attributeKind {
	switch len(name) {
	case 4:
		if equalFoldASCII(name, "path") {
			return attrPath
		}
	case 6:
		if equalFoldASCII(name, "secure") {
			return attrSecure
		}
		if equalFoldASCII(name, "domain") {
			return attrDomain
		}
	case 8:
		if equalFoldASCII(name, "httponly") {
			return attrHTTPOnly
		}
		if equalFoldASCII(name, "samesite") {
			return attrSameSite
		}
	case 11:
		if equalFoldASCII(name, "partitioned") {
			return attrPartitioned
		}
	}
	return attrUnknown
}
