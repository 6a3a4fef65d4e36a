// Package rewrite decides, for one response, what happens to each of its Set-Cookie headers. It joins the parsed
// configuration (which cookies, which requests) with the cookie rewriter (how), and stays free of the proxy-wasm SDK
// so that the whole decision is tested natively; the filter's glue only moves headers in and out.
package rewrite

import (
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/cookie"
)

// Request holds what the response decisions need from the request, computed once per stream.
type Request struct {
	// InScope is false when the request's host or path is outside the configured scope.
	InScope bool
	// Policy is the rewrite policy for this request (Domain filled in for domain: auto).
	Policy cookie.Policy
	// IncompatibleClient is true for user agents that mishandle SameSite=None while the policy would emit it.
	IncompatibleClient bool
}

// NewRequest computes the per-request facts from the request's :authority, :path and User-Agent.
func NewRequest(cfg *config.Config, authority, path, userAgent string) Request {
	r := Request{InScope: cfg.InScope(authority, path), Policy: cfg.Policy()}
	if !r.InScope {
		return r
	}
	if cfg.Cookies.DomainAuto {
		if d, ok := cookie.RegistrableDomain(authority); ok {
			r.Policy.Domain = d
		}
	}
	r.IncompatibleClient = r.Policy.SameSite == cookie.SameSiteNone && cookie.SameSiteNoneIncompatible(userAgent)
	return r
}

// Outcome classifies what happened to one Set-Cookie value; each outcome is one metric, named after String. The
// first three are cookie.Rewrite's own outcomes, with the same values.
type Outcome uint8

// The outcomes.
const (
	Rewritten        = Outcome(cookie.Rewritten)
	Compliant        = Outcome(cookie.Compliant)
	Malformed        = Outcome(cookie.Malformed)
	SkippedSelection = Malformed + 1 // left alone by include/exclude
	SkippedUserAgent = Malformed + 2 // not given SameSite=None: the client mishandles it

	// Outcomes is the number of outcomes: Counts, and the filter's metrics, are arrays indexed by Outcome.
	Outcomes = int(SkippedUserAgent) + 1
)

var outcomeNames = [Outcomes]string{
	Rewritten:        "rewritten",
	Compliant:        "compliant",
	Malformed:        "malformed",
	SkippedSelection: "skipped_selection",
	SkippedUserAgent: "skipped_user_agent",
}

// String returns the outcome's metric suffix: "rewritten", "compliant", "malformed", "skipped_selection" or
// "skipped_user_agent".
func (o Outcome) String() string {
	if int(o) < Outcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Counts are the per-response tallies behind the filter's metrics, one per Outcome.
type Counts [Outcomes]int

// Result is the decision for one Set-Cookie value.
type Result struct {
	Out     string
	Outcome Outcome
}

// One decides the fate of a single Set-Cookie value.
func One(cfg *config.Config, req *Request, value string) Result {
	_, r := appendOne(nil, cfg, req, value)
	return r
}

// appendOne is One with a rewritten value appended to buf (see cookie.AppendRewrite).
func appendOne(buf []byte, cfg *config.Config, req *Request, value string) ([]byte, Result) {
	if !cfg.SelectsAll() {
		name, ok := cookie.Name(value)
		if !ok {
			return buf, Result{value, Malformed}
		}
		if !cfg.Selected(name) {
			return buf, Result{value, SkippedSelection}
		}
	}
	if req.IncompatibleClient {
		// These clients treat SameSite=None as Strict (or drop the cookie), so they must not see it at all; they
		// predate CHIPS and third-party-cookie blocking, so leaving the rest alone loses nothing.
		out, _ := cookie.StripSameSiteNone(value)
		return buf, Result{out, SkippedUserAgent}
	}
	buf, out, o := cookie.AppendRewrite(buf, value, req.Policy)
	return buf, Result{out, Outcome(o)}
}

// Buffer holds the rewritten values of one response. A filter keeps one and hands it to every Response: once it
// has grown to the size of a response's rewritten cookies, rewriting allocates nothing.
type Buffer struct{ b []byte }

// Response rewrites the Set-Cookie values of one response in place (same order, one value per header) and reports
// whether any changed. dst receives the counts. Rewritten values alias buf: they stay valid until buf is given to
// Response again, so the caller hands them to the proxy (which copies them) before the next response.
func Response(cfg *config.Config, req *Request, values []string, dst *Counts, buf *Buffer) (changed bool) {
	b := buf.b[:0]
	for i, v := range values {
		var r Result
		b, r = appendOne(b, cfg, req, v)
		dst[r.Outcome]++
		if r.Out != v {
			values[i] = r.Out
			changed = true
		}
	}
	buf.b = b
	return changed
}
