package affinity

import "strings"

// The Cookie request header (RFC 6265bis §5.7.4 as browsers send it, §4.2.1 as servers should read it) is
// "name=value" pairs separated by ";" and optional whitespace. Finding the affinity cookie and removing it use the
// same split, so that the cookie the filter honours is exactly the one it hides from the upstream.
//
// The split is deliberately lenient, like net/http's Request.Cookies: a pair that is not a valid cookie is skipped,
// never an error, so junk next to the affinity cookie cannot make the filter ignore it. Values are taken verbatim
// (no unquoting): the filter only ever sets unquoted values, and a quoted one simply fails to open.

// nextPair returns the next name-value pair of a Cookie header value and what follows it. ok is false for an
// element that is not a pair (no '=', or an empty name); the caller moves on with rest.
func nextPair(s string) (name, value, rest string, ok bool) {
	elem := s
	if i := strings.IndexByte(s, ';'); i >= 0 {
		elem, rest = s[:i], s[i+1:]
	}
	name, value, found := strings.Cut(elem, "=")
	name = trimWSP(name)
	if !found || name == "" {
		return "", "", rest, false
	}
	return name, trimWSP(value), rest, true
}

// withoutCookie returns the Cookie header values with every pair named name removed, the other elements kept
// byte for byte and re-joined with "; ", headers left empty dropped; changed is false (and out nil) when no header
// held the name.
func withoutCookie(headers []string, name string) (out []string, changed bool) {
	for i, h := range headers {
		stripped, found := stripPair(h, name)
		if !found {
			if changed {
				out = append(out, h)
			}
			continue
		}
		if !changed {
			changed = true
			out = make([]string, 0, len(headers))
			out = append(out, headers[:i]...)
		}
		if stripped != "" {
			out = append(out, stripped)
		}
	}
	return out, changed
}

// stripPair removes the pairs named name from one Cookie header value. Other elements, pairs or not, keep their
// text (trimmed of surrounding whitespace); empty elements disappear.
func stripPair(h, name string) (string, bool) {
	if !strings.Contains(h, name) {
		return h, false
	}
	var b strings.Builder
	found := false
	for rest := h; rest != ""; {
		elem := rest
		rest = ""
		if i := strings.IndexByte(elem, ';'); i >= 0 {
			elem, rest = elem[:i], elem[i+1:]
		}
		if n, _, _, ok := nextPair(elem); ok && n == name {
			found = true
			continue
		}
		if elem = trimWSP(elem); elem == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(elem)
	}
	if !found {
		return h, false
	}
	return b.String(), true
}

// trimWSP trims SP and HTAB, the whitespace RFC 6265bis allows around cookie names and values.
func trimWSP(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
