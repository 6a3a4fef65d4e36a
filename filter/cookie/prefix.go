package cookie

// Cookie name prefixes (RFC 6265bis §4.1.3). Browsers match them
// ASCII-case-insensitively, so "__host-x" is bound by the __Host- rules too.
const (
	securePrefix = "__secure-"
	hostPrefix   = "__host-"
)

// namePrefix is the prefix class of a cookie name.
type namePrefix uint8

const (
	prefixNone namePrefix = iota
	// prefixSecure: the cookie must be Secure or browsers reject it.
	prefixSecure
	// prefixHost: the cookie must be Secure, must have Path=/ and must not
	// have a Domain attribute, or browsers reject it.
	prefixHost
)

func prefixOf(name string) namePrefix {
	switch {
	case hasPrefixFoldASCII(name, hostPrefix):
		return prefixHost
	case hasPrefixFoldASCII(name, securePrefix):
		return prefixSecure
	}
	return prefixNone
}
