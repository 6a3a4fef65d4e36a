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

// Counts are the per-response tallies behind the filter's metrics.
type Counts struct {
	Rewritten        int
	Compliant        int
	SkippedSelection int
	SkippedUserAgent int
	Malformed        int
}

// Result is the decision for one Set-Cookie value.
type Result struct {
	Out     string
	Outcome Outcome
}

// Outcome classifies what happened to one Set-Cookie value; each value maps to one metric.
type Outcome int

// The outcomes, one per metric.
const (
	Rewritten Outcome = iota
	Compliant
	SkippedSelection
	SkippedUserAgent
	Malformed
)

// One decides the fate of a single Set-Cookie value.
func One(cfg *config.Config, req *Request, value string) Result {
	if !cfg.SelectsAll() {
		name, ok := cookie.Name(value)
		if !ok {
			return Result{value, Malformed}
		}
		if !cfg.Selected(name) {
			return Result{value, SkippedSelection}
		}
	}
	if req.IncompatibleClient {
		// These clients treat SameSite=None as Strict (or drop the cookie), so they must not see it at all; they
		// predate CHIPS and third-party-cookie blocking, so leaving the rest alone loses nothing.
		out, _ := cookie.StripSameSiteNone(value)
		return Result{out, SkippedUserAgent}
	}
	out, o := cookie.Rewrite(value, req.Policy)
	switch o {
	case cookie.Rewritten:
		return Result{out, Rewritten}
	case cookie.Compliant:
		return Result{out, Compliant}
	default:
		return Result{value, Malformed}
	}
}

// Response rewrites the Set-Cookie values of one response in place (same order, one value per header) and reports
// whether any changed. dst receives the counts.
func Response(cfg *config.Config, req *Request, values []string, dst *Counts) (changed bool) {
	for i, v := range values {
		r := One(cfg, req, v)
		switch r.Outcome {
		case Rewritten:
			dst.Rewritten++
		case Compliant:
			dst.Compliant++
		case SkippedSelection:
			dst.SkippedSelection++
		case SkippedUserAgent:
			dst.SkippedUserAgent++
		case Malformed:
			dst.Malformed++
		}
		if r.Out != v {
			values[i] = r.Out
			changed = true
		}
	}
	return changed
}
