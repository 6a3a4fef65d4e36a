package main

import (
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
)

// The session-affinity side of a stream. Decisions are filter/affinity's; this file only moves headers and
// properties. It runs only when affinity is enabled, so a filter without it pays one boolean test per callback.
//
// Routing-header hygiene applies to every request, in scope or not: no client may pin a host by sending the header
// itself, and the header Envoy's stateful session adds to a response names an internal address. The cookie itself
// (honouring, stripping, issuing) follows the configured scope like every other cookie.
//
// dry_run means the filter changes nothing, affinity included: no header is removed or added and no cookie issued.
// Verdicts and actions are still counted and logged as if it did, so that an operator can see what affinity would
// do before turning it on; tokens are not sealed, since nothing would carry them.

// upstreamAddressPath is the property holding the "ip:port" of the upstream host serving the stream.
var upstreamAddressPath = []string{"upstream", "address"}

// affinityRequest handles the request head: it computes the request's facts (see readRequest) from the one read of
// all its headers it needs anyway, sparing a host call per fact; then drops a client-sent routing header, honours a
// valid token by setting that header for the stateful session filter that follows, and hides the affinity cookie
// from the upstream.
func (h *httpContext) affinityRequest() {
	a := &h.cfg.Affinity
	headers, err := readHeaders(requestHeaders)
	if err != nil {
		proxywasm.LogWarnf("chips: affinity: reading request headers: %v", err)
		h.readRequest()
		return
	}
	var buf [4]string
	cookies := buf[:0]
	clientRoute := false
	var authority, path, ua string
	var haveAuthority, havePath, haveUA bool // the first of each counts, as proxy_get_header_map_value reads it
	for name, value, ok := headers.next(); ok; name, value, ok = headers.next() {
		switch name {
		case "cookie":
			cookies = append(cookies, value)
		case a.RoutingHeader:
			clientRoute = true
		case ":authority":
			authority, haveAuthority = first(authority, haveAuthority, value)
		case ":path":
			path, havePath = first(path, havePath, value)
		case "user-agent":
			ua, haveUA = first(ua, haveUA, value)
		}
	}
	h.req = rewrite.NewRequest(h.cfg, authority, path, ua)
	dry := h.cfg.DryRun
	if clientRoute && !dry {
		if err := proxywasm.RemoveHttpRequestHeader(a.RoutingHeader); err != nil {
			proxywasm.LogWarnf("chips: affinity: removing the client's %s: %v", a.RoutingHeader, err)
		}
	}
	if !h.req.InScope {
		return
	}
	h.affinity = affinity.ReadRequest(a, cookies, time.Now())
	h.metrics.affinityVerdict(h.affinity.Verdict)
	if dry {
		if h.affinity.Verdict.Rejected() {
			proxywasm.LogInfof("chips: dry_run: affinity: cookie %q rejected (%s)", a.CookieName, h.affinity.Verdict)
		}
		return
	}
	if h.affinity.Verdict == affinity.Honoured {
		if err := proxywasm.AddHttpRequestHeader(a.RoutingHeader, h.affinity.Route); err != nil {
			proxywasm.LogWarnf("chips: affinity: setting %s: %v", a.RoutingHeader, err)
		}
	}
	if h.affinity.StripCookies {
		replaceRequestCookies(h.affinity.Cookies)
	}
}

// first keeps the first value of a header seen several times.
func first(kept string, have bool, value string) (string, bool) {
	if have {
		return kept, true
	}
	return value, true
}

// replaceRequestCookies swaps every cookie header for values (possibly none). Removing them all and adding each back
// keeps HTTP/2 clients' one-header-per-cookie form, and drops the header entirely when nothing is left.
func replaceRequestCookies(values []string) {
	if err := proxywasm.RemoveHttpRequestHeader("cookie"); err != nil {
		proxywasm.LogWarnf("chips: affinity: removing cookie: %v", err)
		return
	}
	for _, v := range values {
		if err := proxywasm.AddHttpRequestHeader("cookie", v); err != nil {
			proxywasm.LogWarnf("chips: affinity: adding cookie: %v", err)
		}
	}
}

// affinityResponse handles the response head, given all its headers: it removes the stateful session's routing
// header, decides whether the client gets a (new, re-pinned or refreshed) cookie, makes the response private when
// it does (nocache), and returns that Set-Cookie value for the caller to add with the other cookies ("" = none).
func (h *httpContext) affinityResponse(headers headerIter) string {
	a := &h.cfg.Affinity
	dry := h.cfg.DryRun
	var buf [2]string
	cacheControl := buf[:0]
	route := false
	for name, value, ok := headers.next(); ok; name, value, ok = headers.next() {
		switch name {
		case a.RoutingHeader:
			route = true
		case "cache-control":
			cacheControl = append(cacheControl, value)
		}
	}
	if route && !dry {
		if err := proxywasm.RemoveHttpResponseHeader(a.RoutingHeader); err != nil {
			proxywasm.LogWarnf("chips: affinity: removing %s from the response: %v", a.RoutingHeader, err)
		}
	}
	if !h.req.InScope {
		return ""
	}
	// Missing (a local reply, no upstream chosen) reads as "": there is nothing to pin to.
	now := time.Now()
	action, tok := affinity.Decide(a, &h.affinity, upstreamAddress(), now)
	if action == affinity.Keep {
		return ""
	}
	if dry {
		h.metrics.affinityAction(action)
		proxywasm.LogInfof("chips: dry_run: affinity: cookie %q would be %s (upstream %s)", a.CookieName, action, tok.Upstream)
		return ""
	}
	value, err := a.Sealer.Seal(tok, a.CookieName)
	if err != nil {
		proxywasm.LogWarnf("chips: affinity: %v", err)
		return ""
	}
	h.metrics.affinityAction(action)
	if a.NoCache {
		if cc, changed := affinity.PrivateCacheControl(cacheControl); changed {
			setResponseCacheControl(cc, len(cacheControl))
		}
	}
	return affinity.SetCookie(a, value, &h.req)
}

// setResponseCacheControl leaves exactly one cache-control header holding value. Envoy's replace_header_map_value
// changes only the first of several headers, and the value is the merged list of all of them, so several are
// removed and one added instead.
func setResponseCacheControl(value string, existing int) {
	var err error
	if existing > 1 {
		if err = proxywasm.RemoveHttpResponseHeader("cache-control"); err == nil {
			err = proxywasm.AddHttpResponseHeader("cache-control", value)
		}
	} else {
		err = proxywasm.ReplaceHttpResponseHeader("cache-control", value)
	}
	if err != nil {
		proxywasm.LogWarnf("chips: affinity: setting cache-control: %v", err)
	}
}
