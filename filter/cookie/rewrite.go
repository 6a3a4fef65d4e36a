package cookie

import (
	"slices"
	"strings"
	"unsafe"
)

// Outcome says what Rewrite did with a Set-Cookie value.
type Outcome int

const (
	// Rewritten: the returned value differs from the input.
	Rewritten Outcome = iota
	// Compliant: the cookie already satisfied the policy; the returned
	// value is the input itself.
	Compliant
	// Malformed: the value is not a cookie, or one browsers already reject
	// and the policy cannot repair (see Rewrite); the returned value is the
	// input itself.
	Malformed
)

// String returns "rewritten", "compliant" or "malformed".
func (o Outcome) String() string {
	switch o {
	case Rewritten:
		return "rewritten"
	case Compliant:
		return "compliant"
	case Malformed:
		return "malformed"
	}
	return "unknown"
}

// Text of the attributes Rewrite appends, in the order it appends them:
// scope first, then flags, then the cross-site attributes, so that the tail
// reads like the vendor's deployment notes: "Secure; SameSite=None; Partitioned".
const (
	appendPath        = "; Path="
	appendDomain      = "; Domain="
	appendHTTPOnly    = "; HttpOnly"
	appendSecure      = "; Secure"
	appendSameSite    = "; " // followed by SameSite.attribute()
	appendPartitioned = "; Partitioned"
)

// maxAppendedOctets bounds what Rewrite adds to a line, so the output buffer
// is allocated once. In-place replacements grow the line by less than the
// appended form of the same attribute, which this bound also covers.
func maxAppendedOctets(p Policy) int {
	return len(appendPath) + len(p.Path) +
		len(appendDomain) + len(p.Domain) +
		len(appendHTTPOnly) + len(appendSecure) +
		len(appendSameSite) + len("SameSite=Strict") +
		len(appendPartitioned)
}

// rewritePlan lists the changes a cookie needs.
type rewritePlan struct {
	sameSite    bool // replace every SameSite attribute by the policy's
	domain      bool // replace every Domain attribute by the policy's
	path        bool // append Path
	httpOnly    bool // append HttpOnly
	secure      bool // append Secure
	partitioned bool // append Partitioned
}

func (r rewritePlan) empty() bool { return r == rewritePlan{} }

// Rewrite applies p to one Set-Cookie header value and returns the new value
// and what happened.
//
// Changes, each made only when needed:
//
//   - SameSite: when the cookie's effective SameSite differs from p.SameSite,
//     the last honoured SameSite attribute is rewritten in place to the
//     canonical "SameSite=<value>" and every other SameSite attribute is
//     removed (so no later one can override it); without any, one is appended.
//   - Partitioned: appended when p.Partitioned and the cookie has none (in any
//     case, with any value). An existing Partitioned is never removed.
//   - Secure: appended when the result has Partitioned or SameSite=None, or
//     the name starts with __Secure- or __Host- (any case), since browsers
//     reject those cookies without it.
//   - HttpOnly: appended when p.HTTPOnly and the cookie has none.
//   - Path: "Path=<p.Path>" appended when p.Path != "" and the cookie's path
//     does not come from a Path attribute (none, or one whose value is empty
//     or does not start with '/', which browsers replace by the default-path).
//   - Domain: when p.Domain != "" and the effective Domain differs (ignoring
//     ASCII case and a leading dot), handled like SameSite. Never on __Host-.
//
// An attribute is "effective" when it is the last of its name and its value
// is at most 1024 octets; a cookie whose last SameSite (or Domain) is an
// over-long one is normalised too, because parsers without the 1024-octet
// rule would read that one.
//
// Everything else is kept byte-for-byte: the name-value-pair, unknown
// attributes in place, Expires (commas and all), Max-Age, whitespace. When
// the value is rewritten, empty attributes and whitespace at its very end
// ("a=b; ") are dropped before appending.
//
// Outcome Malformed, value unchanged, for a line that is not a cookie (see
// the package doc: CTLs, no '=', empty name, name+value over 4096 octets)
// and for a __Host- cookie that browsers reject and that the policy may not
// repair: it has a Domain attribute, or an explicit Path other than "/", or
// no explicit Path while p.Path is not "/". Rewrite never changes a Domain or
// Path the policy did not ask for, and never emits a __Host- cookie that
// browsers would reject.
//
// Outcome Compliant, value unchanged (and no allocation), when nothing
// needed changing. Rewrite is idempotent: a Rewritten value given back to
// Rewrite with the same policy comes back Compliant.
//
// A policy that Validate rejects is applied as documented there.
func Rewrite(line string, p Policy) (string, Outcome) {
	var c cookieState
	if !scanCookie(line, &c) {
		return line, Malformed
	}
	p = p.effective()
	plan, ok := planRewrite(&c, p)
	if !ok {
		return line, Malformed
	}
	if plan.empty() {
		return line, Compliant
	}
	b := appendRewrite(make([]byte, 0, len(line)+maxAppendedOctets(p)), line, &c, p, plan)
	return unsafe.String(unsafe.SliceData(b), len(b)), Rewritten
}

// AppendRewrite is Rewrite for callers that keep the rewritten values in a buffer of their own: a Rewritten value
// is appended to dst and returned as a string aliasing dst's bytes, which the caller must not overwrite while the
// string is in use. Otherwise dst comes back unchanged with the input line. A filter rewriting the cookies of one
// response after another reuses one buffer, and allocates nothing once it is large enough.
func AppendRewrite(dst []byte, line string, p Policy) ([]byte, string, Outcome) {
	var c cookieState
	if !scanCookie(line, &c) {
		return dst, line, Malformed
	}
	p = p.effective()
	plan, ok := planRewrite(&c, p)
	if !ok {
		return dst, line, Malformed
	}
	if plan.empty() {
		return dst, line, Compliant
	}
	// Grown at most once, to the size this value may need; strings already handed out keep the old array.
	dst = slices.Grow(dst, len(line)+maxAppendedOctets(p))
	start := len(dst)
	dst = appendRewrite(dst, line, &c, p, plan)
	out := dst[start:]
	return dst, unsafe.String(unsafe.SliceData(out), len(out)), Rewritten
}

// planRewrite decides what c needs under p. It reports false for a __Host-
// cookie that browsers reject and p may not repair.
func planRewrite(c *cookieState, p Policy) (rewritePlan, bool) {
	var plan rewritePlan
	prefix := prefixOf(c.pair.name)

	if prefix == prefixHost {
		// RFC 6265bis §4.1.3.2: no Domain attribute, an explicit Path of
		// exactly "/". A Domain is never removed and a Path never replaced
		// on the policy's behalf; only a missing one may be added, and only
		// when the policy's Path is "/".
		if c.domain.present() {
			return rewritePlan{}, false
		}
		if c.hasExplicitPath() {
			if c.path.value != "/" {
				return rewritePlan{}, false
			}
		} else if p.Path != "/" {
			return rewritePlan{}, false
		}
	}

	if effective, ok := sameSiteOf(c.sameSite.value); !c.sameSite.settled() || !ok || effective != p.SameSite {
		plan.sameSite = true
	}
	if p.Domain != "" && prefix != prefixHost &&
		!(c.domain.settled() && sameDomain(c.domain.value, p.Domain)) {
		plan.domain = true
	}
	plan.path = p.Path != "" && !c.hasExplicitPath()
	plan.httpOnly = p.HTTPOnly && !c.httpOnly
	plan.partitioned = p.Partitioned && !c.partitioned

	// CHIPS: Partitioned requires Secure. RFC 6265bis §4.1.2.7: SameSite=None
	// requires Secure (browsers reject the cookie otherwise). §4.1.3: both
	// prefixes require Secure.
	needsSecure := c.partitioned || p.Partitioned || p.SameSite == SameSiteNone || prefix != prefixNone
	plan.secure = needsSecure && !c.secure
	return plan, true
}

// sameDomain compares Domain attribute values the way browsers use them:
// a leading dot is ignored and the comparison is ASCII-case-insensitive
// (RFC 6265bis §5.6.3).
func sameDomain(a, b string) bool {
	a = strings.TrimPrefix(a, ".")
	b = strings.TrimPrefix(b, ".")
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// appendRewrite appends the rewritten line to b, which has room for it (see maxAppendedOctets).
func appendRewrite(b []byte, line string, c *cookieState, p Policy, plan rewritePlan) []byte {
	// Empty attributes and whitespace at the end would sit between the kept
	// text and what is appended ("a=b; ; Secure"); they carry nothing.
	// The cookie value never ends in ';' or whitespace, so this never cuts
	// into the name-value-pair.
	end := len(line)
	for end > 0 && (line[end-1] == ';' || isWSP(line[end-1])) {
		end--
	}
	line = line[:end]

	// Common case: the line is kept whole, except at most its single SameSite attribute replaced in place, and
	// the rest is appended; no second pass over the attributes is needed.
	replaceSameSite := plan.sameSite && c.sameSite.n > 0
	if !(plan.domain && c.domain.n > 0) && (!replaceSameSite || c.sameSite.n == 1 && c.sameSite.at >= 0) {
		if replaceSameSite {
			b = append(b, line[:c.sameSite.textStart]...)
			b = append(b, p.SameSite.attribute()...)
			b = append(b, line[c.sameSite.textEnd:]...)
		} else {
			b = append(b, line...)
		}
		return appendAppended(b, c, p, plan)
	}
	b = append(b, line[:min(c.pair.end, len(line))]...)
	var a attribute
	for pos := c.pair.end; pos < len(line); pos = a.end {
		a.scan(line, pos) // no CTL: scanCookie checked
		switch {
		case a.kind == attrSameSite && plan.sameSite:
			if a.start == c.sameSite.at {
				b = appendReplaced(b, line, &a, p.SameSite.attribute(), "")
			}
		case a.kind == attrDomain && plan.domain:
			if a.start == c.domain.at {
				b = appendReplaced(b, line, &a, "Domain=", p.Domain)
			}
		default:
			b = append(b, line[a.start:a.end]...)
		}
	}
	return appendAppended(b, c, p, plan)
}

// appendAppended appends the attributes plan adds at the end of the line.
func appendAppended(b []byte, c *cookieState, p Policy, plan rewritePlan) []byte {
	if plan.path {
		b = append(b, appendPath...)
		b = append(b, p.Path...)
	}
	if plan.domain && c.domain.at < 0 {
		b = append(b, appendDomain...)
		b = append(b, p.Domain...)
	}
	if plan.httpOnly {
		b = append(b, appendHTTPOnly...)
	}
	if plan.secure {
		b = append(b, appendSecure...)
	}
	if plan.sameSite && c.sameSite.at < 0 {
		b = append(b, appendSameSite...)
		b = append(b, p.SameSite.attribute()...)
	}
	if plan.partitioned {
		b = append(b, appendPartitioned...)
	}
	return b
}

// appendReplaced appends attribute a with its text (between its surrounding
// whitespace) replaced by text1+text2.
func appendReplaced(b []byte, line string, a *attribute, text1, text2 string) []byte {
	b = append(b, line[a.start:a.textStart]...)
	b = append(b, text1...)
	b = append(b, text2...)
	return append(b, line[a.textEnd:a.end]...)
}
