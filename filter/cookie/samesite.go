package cookie

import "fmt"

// SameSite is the value of the SameSite cookie attribute (RFC 6265bis §4.1.2.7).
// The zero value is SameSiteNone, the value cross-site cookies need.
type SameSite int

// The SameSite values a policy can ask for.
const (
	SameSiteNone SameSite = iota
	SameSiteLax
	SameSiteStrict
)

// String returns the canonical attribute value: "None", "Lax" or "Strict".
func (s SameSite) String() string {
	switch s {
	case SameSiteNone:
		return "None"
	case SameSiteLax:
		return "Lax"
	case SameSiteStrict:
		return "Strict"
	}
	return fmt.Sprintf("SameSite(%d)", int(s))
}

// valid reports whether s is one of the three constants.
func (s SameSite) valid() bool { return s >= SameSiteNone && s <= SameSiteStrict }

// attribute returns the canonical attribute text, e.g. "SameSite=None".
// A SameSite outside the three constants is treated as SameSiteNone, the
// default, so that Rewrite never emits an invalid attribute.
func (s SameSite) attribute() string {
	switch s {
	case SameSiteLax:
		return "SameSite=Lax"
	case SameSiteStrict:
		return "SameSite=Strict"
	}
	return "SameSite=None"
}

// ParseSameSite parses "None", "Lax" or "Strict", ignoring ASCII case.
func ParseSameSite(s string) (SameSite, error) {
	if v, ok := sameSiteOf(s); ok {
		return v, nil
	}
	return SameSiteNone, fmt.Errorf("cookie: want SameSite None, Lax or Strict, got %q", s)
}

// sameSiteOf interprets an attribute value the way RFC 6265bis §5.6.7 does:
// ASCII-case-insensitive match of "None", "Strict" or "Lax". Anything else
// gives the "Default" enforcement mode, reported here as ok == false.
func sameSiteOf(value string) (SameSite, bool) {
	switch {
	case equalFoldASCII(value, "none"):
		return SameSiteNone, true
	case equalFoldASCII(value, "lax"):
		return SameSiteLax, true
	case equalFoldASCII(value, "strict"):
		return SameSiteStrict, true
	}
	return SameSiteNone, false
}
