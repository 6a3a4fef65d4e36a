package cookie

import "strings"

// StripSameSiteNone removes SameSite from a Set-Cookie value whose effective
// SameSite is None, for user agents that mishandle that value (see
// SameSiteNoneIncompatible): Chrome 51–66 reject such cookies, and Safari on
// iOS 12 and macOS 10.14 treat them as Strict. Without a SameSite attribute
// those clients behave as SameSite=None was meant to.
//
// Every SameSite attribute is removed, not only the ones spelled None, so
// that an earlier "SameSite=Lax" cannot become the effective one. Secure and
// Partitioned stay: old clients ignore Partitioned, and Secure is harmless.
// A cookie whose effective SameSite is Lax, Strict or absent, and a value
// that is not a cookie (see Rewrite), are returned unchanged with false.
func StripSameSiteNone(line string) (string, bool) {
	var c cookieState
	if !scanCookie(line, &c) || !c.sameSite.present() {
		return line, false
	}
	if effective, ok := sameSiteOf(c.sameSite.value); !ok || effective != SameSiteNone {
		return line, false
	}
	var b strings.Builder
	b.Grow(len(line))
	b.WriteString(line[:c.pair.end])
	var a attribute
	for pos := c.pair.end; pos < len(line); pos = a.end {
		a.scan(line, pos) // no CTL: scanCookie checked
		if a.kind != attrSameSite {
			b.WriteString(line[a.start:a.end])
		}
	}
	return b.String(), true
}
