package cookie

import "strings"

// Name returns the name of the cookie in one Set-Cookie header value, for
// selecting cookies by name before rewriting them. It does not allocate and
// reads only the name-value-pair: the text before the first ';', split at
// the first '=' and trimmed of SP and HTAB (RFC 6265bis §5.6).
//
// ok is false when there is no '=' before the first ';', when the name is
// empty, or when it contains a control character. Name does not check the
// rest of the line; Rewrite reports such a line as Malformed.
func Name(line string) (name string, ok bool) {
	pair := line
	if end := strings.IndexByte(line, ';'); end >= 0 {
		pair = line[:end]
	}
	rawName, _, found := strings.Cut(pair, "=")
	if !found {
		return "", false
	}
	name = trimWSP(rawName)
	if name == "" || containsCTL(name) {
		return "", false
	}
	return name, true
}
