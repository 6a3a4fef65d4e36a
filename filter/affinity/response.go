package affinity

import (
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/cookie"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
)

// baseAttributes are the affinity cookie's own attributes before the configured cookie policy applies: the whole
// site (Path=/, which a __Host- name requires anyway), never readable by scripts (HttpOnly: the page has no use
// for it), and the cross-site set the filter exists for (Secure; SameSite=None; Partitioned).
const baseAttributes = "; Path=/; Secure; HttpOnly; SameSite=None; Partitioned"

// SetCookie returns the Set-Cookie value carrying the sealed token value, passed through the same cookie policy
// as the upstream's cookies: the configured SameSite replaces None, domain: auto adds the registrable domain
// (never to a __Host- name, which cookie.Rewrite leaves without a Domain), and clients that mishandle
// SameSite=None get it stripped. The policy never removes Partitioned or Secure.
//
// A max_age that is not a whole number of seconds is rounded up: "Max-Age=0" would delete the cookie.
func SetCookie(a *config.Affinity, value string, req *rewrite.Request) string {
	// One array holds the line as built and, after it, the line as rewritten: a single allocation for both (each
	// costs the filter a few hundred nanoseconds). AppendRewrite grows it should the room reserved not suffice.
	n := len(a.CookieName) + 1 + len(value) + len(baseAttributes) + len("; Max-Age=") + 20
	b := make([]byte, 0, 2*n+len(req.Policy.Path)+len(req.Policy.Domain)+rewriteRoom)
	b = append(b, a.CookieName...)
	b = append(b, '=')
	b = append(b, value...)
	b = append(b, baseAttributes...)
	if a.MaxAge > 0 {
		secs := int64((a.MaxAge + time.Second - 1) / time.Second)
		b = append(b, "; Max-Age="...)
		b = strconv.AppendInt(b, secs, 10)
	}
	line := unsafe.String(unsafe.SliceData(b), len(b)) // b's bytes up to len(b) are never written again
	if req.IncompatibleClient {
		out, _ := cookie.StripSameSiteNone(line)
		return out
	}
	// The name is a validated token and the value base64url, so Rewrite cannot find the line malformed; were it
	// ever to, the line as built is still a valid cookie.
	_, out, _ := cookie.AppendRewrite(b, line, req.Policy)
	return out
}

// rewriteRoom covers what the cookie policy may add to the affinity cookie besides its Path and Domain.
const rewriteRoom = 64

// WithoutNamed returns the response's Set-Cookie values minus those setting a cookie called name, and whether any
// was removed. The affinity cookie's name belongs to the filter: an upstream cookie of that name would overwrite the
// token in the browser (and be stripped from the next request by indirect), so it is dropped, as HAProxy's insert
// mode does with a server's cookie of its name. Names compare case-sensitively, as browsers store them.
func WithoutNamed(values []string, name string) ([]string, bool) {
	for i, v := range values {
		if n, ok := cookie.Name(v); !ok || n != name {
			continue
		}
		out := append(make([]string, 0, len(values)-1), values[:i]...)
		for _, w := range values[i+1:] {
			if n, ok := cookie.Name(w); !ok || n != name {
				out = append(out, w)
			}
		}
		return out, true
	}
	return values, false
}

// PrivateCacheControl returns the Cache-Control value a response must carry once a fresh affinity cookie is added
// to it, given its Cache-Control header values (several headers form one comma-separated list, RFC 9110 §5.3), and
// whether that differs from what it has. It implements HAProxy's nocache: a shared cache must not keep a response
// holding one client's pin and serve it to others.
//
// A response marked private (unqualified) or no-store is left alone. Otherwise every directive is kept except
// public and a field-qualified private="…", which would let a shared cache store the response, and private is
// added. no-cache is not enough on its own: it lets a shared cache store the response and reuse it after
// revalidation (RFC 9111 §5.2.2.4), and Set-Cookie does not prevent storing (RFC 9111 §7.3).
func PrivateCacheControl(values []string) (string, bool) {
	// The result is built in one array: inside the filter each allocation costs a few hundred nanoseconds, and
	// the response that gets a fresh cookie is the one that pays this.
	n := len("private")
	for _, v := range values {
		n += len(v) + len(", ")
	}
	out := make([]byte, 0, n)
	for _, v := range values {
		for rest, more := v, true; more; {
			var d string
			d, rest, more = nextDirective(rest)
			if d == "" {
				continue
			}
			name, _, qualified := strings.Cut(d, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			switch {
			case name == "no-store", name == "private" && !qualified:
				return "", false
			case name == "public", name == "private":
				continue
			}
			out = append(append(out, d...), ", "...)
		}
	}
	out = append(out, "private"...)
	return unsafe.String(unsafe.SliceData(out), len(out)), true
}

// directives splits a Cache-Control value at the commas outside quoted strings (RFC 9111 §5.2: a directive's
// argument may be a quoted-string holding commas, e.g. no-cache="set-cookie, x-a"), trimmed, empty ones dropped.
// A last directive whose quoted string never ends is dropped too: kept, it would swallow the private appended
// after it.
func directives(v string) []string {
	var out []string
	for rest, more := v, true; more; {
		var d string
		if d, rest, more = nextDirective(rest); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// nextDirective returns the first directive of v, trimmed ("" when empty, or when it is the last and its quoted
// string never ends), what follows its comma, and whether a comma followed it.
func nextDirective(v string) (d, rest string, more bool) {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++ // the escaped character, even a quote or a comma, belongs to the string
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return strings.TrimSpace(v[:i]), v[i+1:], true
		}
	}
	if quoted {
		return "", "", false
	}
	return strings.TrimSpace(v), "", false
}
