package cookie

import (
	"strings"
	"unsafe"
)

// The filter runs this package compiled to WebAssembly, where Go's code generator turns every jump between basic
// blocks into a dispatch through a br_table: a byte-at-a-time loop with a branch per byte runs about ten times
// slower than natively. The scanner therefore checks a whole line for control characters eight bytes at a time and
// finds separators with strings.IndexByte, which the runtime implements in WebAssembly directly.

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasCTL reports whether s contains an octet isCTL rejects (HTAB excepted).
func hasCTL(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := *(*uint64)(unsafe.Pointer(unsafe.StringData(s[i:])))
		// A byte below 0x20 or equal to 0x7f sets its high bit in one of the two terms (the classic "has less
		// than" and "has zero byte" tests); a hit is confirmed byte by byte, since HTAB is allowed.
		y := x ^ (0x7f * lsb)
		if ((x-0x20*lsb)&^x|(y-lsb)&^y)&msb != 0 && containsCTL(s[i:i+8]) {
			return true
		}
	}
	return containsCTL(s[i:])
}

// segmentEnd returns the offset of the first ';' at or after start, or len(line).
func segmentEnd(line string, start int) int {
	if i := strings.IndexByte(line[start:], ';'); i >= 0 {
		return start + i
	}
	return len(line)
}

// parsePairClean is parsePair for a line without CTLs.
func parsePairClean(line string) (cookiePair, bool) {
	end := segmentEnd(line, 0)
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

// nextAttributeClean is nextAttribute for a line without CTLs.
func nextAttributeClean(line string, start int) attribute {
	end := segmentEnd(line, start+1)
	a := attribute{start: start, end: end, textStart: start + 1, textEnd: end}
	for a.textStart < a.textEnd && isWSP(line[a.textStart]) {
		a.textStart++
	}
	for a.textEnd > a.textStart && isWSP(line[a.textEnd-1]) {
		a.textEnd--
	}
	text := line[a.textStart:a.textEnd]
	if equals := strings.IndexByte(text, '='); equals >= 0 {
		a.name, a.value = trimWSP(text[:equals]), trimWSP(text[equals+1:])
	} else {
		a.name = text
	}
	a.kind = kindOfFast(a.name)
	return a
}

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

// lit packs a lowercase literal of up to eight bytes like word.
func lit(s string) uint64 {
	var w uint64
	for i := len(s) - 1; i >= 0; i-- {
		w = w<<8 | uint64(s[i])
	}
	return w
}

var (
	litPath        = lit("path")
	litSecure      = lit("secure")
	litDomain      = lit("domain")
	litHTTPOnly    = lit("httponly")
	litSameSite    = lit("samesite")
	litPartitioned = lit("partitio")
	litNed         = lit("ned")
)

// kindOfFast is kindOf with whole-word comparisons. Every name it recognises is made of letters only, which is what
// makes the OR-0x20 folding of word exact.
func kindOfFast(name string) attributeKind {
	switch len(name) {
	case 4:
		if word(name) == litPath {
			return attrPath
		}
	case 6:
		switch word(name) {
		case litSecure:
			return attrSecure
		case litDomain:
			return attrDomain
		}
	case 8:
		switch word(name) {
		case litHTTPOnly:
			return attrHTTPOnly
		case litSameSite:
			return attrSameSite
		}
	case 11:
		if word(name) == litPartitioned && word(name[8:]) == litNed {
			return attrPartitioned
		}
	}
	return attrUnknown
}
