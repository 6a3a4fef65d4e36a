package cookie

import (
	"errors"
	"fmt"
)

// Policy says what Rewrite makes of every cookie it is given.
//
// Secure is not a setting: Rewrite adds it whenever the result would be
// rejected without it (Partitioned, SameSite=None, __Secure-/__Host- names).
type Policy struct {
	// SameSite replaces every SameSite attribute of the cookie.
	SameSite SameSite
	// Partitioned adds the Partitioned attribute (CHIPS) when missing.
	// Rewrite never removes an existing Partitioned.
	Partitioned bool
	// HTTPOnly adds HttpOnly when missing.
	HTTPOnly bool
	// Path, when not "", is added as Path=<Path> to a cookie whose path does
	// not come from a Path attribute. It must start with '/'.
	Path string
	// Domain, when not "", sets the cookie's Domain attribute (replacing any
	// existing one), except on __Host- cookies, which must not have one.
	Domain string
}

// DefaultPolicy is the policy of an empty filter configuration: every cookie
// gets SameSite=None, Secure and Partitioned, and nothing else changes.
func DefaultPolicy() Policy {
	return Policy{SameSite: SameSiteNone, Partitioned: true}
}

// Validate reports a policy that Rewrite could not apply faithfully. Rewrite
// itself stays safe with an invalid policy: it treats an unknown SameSite as
// SameSiteNone and ignores a Path or Domain that Validate rejects, so that no
// policy can inject attributes or break the header.
func (p Policy) Validate() error {
	var errs []error
	if !p.SameSite.valid() {
		errs = append(errs, fmt.Errorf("cookie: policy SameSite: want None, Lax or Strict, got %v", p.SameSite))
	}
	if p.Path != "" && !validPolicyPath(p.Path) {
		errs = append(errs, fmt.Errorf("cookie: policy Path: want a path starting with \"/\", at most %d octets, without control characters, ';' or surrounding whitespace, got %q", maxAttributeValueOctets, p.Path))
	}
	if p.Domain != "" && !validPolicyDomain(p.Domain) {
		errs = append(errs, fmt.Errorf("cookie: policy Domain: want a host name (letters, digits, '-', '_', '.'; no leading or trailing dot; at most 253 octets), got %q", p.Domain))
	}
	return errors.Join(errs...)
}

// validPolicyPath accepts what RFC 6265bis §4.1.1 allows as path-value
// (any CHAR except CTLs or ';') that browsers keep as is: it starts with
// '/' (§5.6.4) and has no whitespace for them to trim.
func validPolicyPath(path string) bool {
	if len(path) == 0 || path[0] != '/' || len(path) > maxAttributeValueOctets || isWSP(path[len(path)-1]) {
		return false
	}
	for i := 0; i < len(path); i++ {
		if isCTL(path[i]) || path[i] == ';' {
			return false
		}
	}
	return true
}

// validPolicyDomain accepts a plain DNS host name, which is all the filter
// ever sets (RegistrableDomain's result).
func validPolicyDomain(domain string) bool {
	if len(domain) == 0 || len(domain) > 253 || domain[0] == '.' || domain[len(domain)-1] == '.' {
		return false
	}
	for i := 0; i < len(domain); i++ {
		c := domain[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// effective returns the policy Rewrite applies: p with an unusable Path or
// Domain cleared and an unknown SameSite turned into SameSiteNone.
func (p Policy) effective() Policy {
	if !p.SameSite.valid() {
		p.SameSite = SameSiteNone
	}
	if p.Path != "" && !validPolicyPath(p.Path) {
		p.Path = ""
	}
	if p.Domain != "" && !validPolicyDomain(p.Domain) {
		p.Domain = ""
	}
	return p
}
