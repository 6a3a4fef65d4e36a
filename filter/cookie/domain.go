package cookie

import "strings"

//go:generate go run ./internal/pslgen -o psl_rules.go

// RegistrableDomain returns the registrable domain ("eTLD+1") of the host in
// an HTTP authority, for the filter's `domain: auto`: a cookie with that
// Domain is shared by every sub-domain of the site, as the chat widget's own
// cookies are.
//
// The authority is reduced to its host: the port is removed, one trailing
// dot too, and the result is lowercased. ok is false, and no Domain should be
// set, for:
//
//   - IP addresses: bracketed or bare IPv6, and any host whose last label is
//     a number (decimal or 0x-hex), which browsers parse as IPv4 (WHATWG URL
//     "ends in a number"); a cookie Domain cannot name an IP address;
//   - "localhost" and other single-label hosts: there is no registrable
//     domain above them;
//   - hosts that are themselves a public suffix ("co.uk", "github.io"):
//     browsers reject a Domain attribute naming a public suffix;
//   - anything that is not an ASCII host name (empty labels, other bytes).
//
// The lookup uses the Public Suffix List rules of the golang.org/x/net
// version pinned in go.mod, ICANN and private sections, and the algorithm of
// golang.org/x/net/publicsuffix.EffectiveTLDPlusOne, whose results it matches
// (internal/pslgen says why that package is not imported). It allocates only
// to lowercase a host that has upper-case letters.
func RegistrableDomain(authority string) (string, bool) {
	host, ok := hostOf(authority)
	if !ok {
		return "", false
	}
	host = lowerASCII(host)
	if endsInNumber(host) || strings.IndexByte(host, '.') < 0 { // single label: localhost included
		return "", false
	}
	suffix := publicSuffix(host)
	if len(suffix) >= len(host) {
		return "", false
	}
	// host = <labels>.<suffix>: keep one label more than the suffix.
	rest := host[:len(host)-len(suffix)-1]
	return host[strings.LastIndexByte(rest, '.')+1:], true
}

// hostOf strips the port and one trailing dot from an authority and checks
// that what is left is an ASCII host name with no empty label.
func hostOf(authority string) (string, bool) {
	host := authority
	if strings.HasPrefix(host, "[") {
		return "", false // IPv6 literal
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if strings.IndexByte(host[:i], ':') >= 0 {
			return "", false // bare IPv6 address
		}
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return "", false
	}
	labelStart := 0
	for i := 0; i <= len(host); i++ {
		if i == len(host) || host[i] == '.' {
			if i == labelStart {
				return "", false // empty label
			}
			labelStart = i + 1
			continue
		}
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	return host, true
}

// endsInNumber reports a lowercase host whose last label is decimal digits
// or 0x followed by hex digits: the WHATWG URL host parser then reads the
// host as an IPv4 address ("127.0.0.1", but also "0x7f.1").
func endsInNumber(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		for i := 0; i < len(hex); i++ {
			if c := hex[i]; !isDigit(c) && !('a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(last); i++ {
		if !isDigit(last[i]) {
			return false
		}
	}
	return true
}

// lowerASCII lowercases ASCII letters, allocating only when there is one.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// publicSuffix returns the public suffix of a lowercase host with at least
// one dot, following the Public Suffix List algorithm
// (https://publicsuffix.org/list/): the matching rule with the most labels
// prevails, an exception rule ("!www.ck") prevails over all and makes the
// suffix one label shorter than itself, a wildcard ("*.ck") matches any one
// label, and with no match the last label is the suffix (the implicit "*").
func publicSuffix(host string) string {
	suffix := host[strings.LastIndexByte(host, '.')+1:]
	// Walk the candidate suffixes from the shortest to the longest.
	for end := len(host) - len(suffix) - 1; ; {
		start := strings.LastIndexByte(host[:end], '.') + 1
		candidate := host[start:]
		parent := host[end+1:]
		if hasRule("!", candidate) {
			return parent
		}
		if hasRule("", candidate) || hasRule("*.", parent) {
			suffix = candidate
		}
		if start == 0 {
			return suffix
		}
		end = start - 1
	}
}

// Sorted bytewise, the exception rules ("!…") come first, then the wildcard
// rules ("*.…"), then the plain ones ('!' < '*' < digits and letters). Each
// lookup searches only its own part; the two offsets are found once, at
// start-up, without allocating.
var (
	wildcardRulesStart = ruleSectionStart('*')
	plainRulesStart    = ruleSectionStart(0)
)

// ruleSectionStart returns the offset of the first rule that does not start
// with '!' nor, unless first is '*', with '*'.
func ruleSectionStart(first byte) int {
	at := 0
	for at < len(publicSuffixRules) {
		c := publicSuffixRules[at]
		if c != '!' && (c != '*' || first == '*') {
			return at
		}
		at += strings.IndexByte(publicSuffixRules[at:], '\n') + 1
	}
	return at
}

// hasRule reports whether prefix+name is one of publicSuffixRules, where
// prefix is "" (a plain rule), "!" (an exception) or "*." (a wildcard), by
// binary search over the sorted, newline-separated constant: no table to
// build at start-up, nothing allocated per lookup.
func hasRule(prefix, name string) bool {
	lo, hi := plainRulesStart, len(publicSuffixRules) // both always at the start of a line
	switch prefix {
	case "!":
		lo, hi = 0, wildcardRulesStart
	case "*.":
		lo, hi = wildcardRulesStart, plainRulesStart
	}
	rules := publicSuffixRules
	for lo < hi {
		mid := lo + (hi-lo)/2
		start := lo + strings.LastIndexByte(rules[lo:mid], '\n') + 1
		end := start + strings.IndexByte(rules[start:], '\n')
		switch compareConcat(rules[start:end], prefix, name) {
		case 0:
			return true
		case -1:
			lo = end + 1
		default:
			hi = start
		}
	}
	return false
}

// compareConcat compares s with a+b without building a+b.
func compareConcat(s, a, b string) int {
	if len(s) >= len(a) {
		if c := strings.Compare(s[:len(a)], a); c != 0 {
			return c
		}
		return strings.Compare(s[len(a):], b)
	}
	if c := strings.Compare(s, a[:len(s)]); c != 0 {
		return c
	}
	return -1 // s is a proper prefix of a+b
}
