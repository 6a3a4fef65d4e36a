package main

import (
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/cookie"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
)

// httpContext is one stream: it learns the request's facts on the way in and rewrites cookies on the way out.
type httpContext struct {
	types.DefaultHttpContext
	cfg      *config.Config
	metrics  *metrics
	req      rewrite.Request
	affinity affinity.Request // what the request's affinity cookie amounted to (affinity enabled only)
	// rewritten holds the rewritten Set-Cookie values until they are handed to the host. It is the plugin's, shared
	// by its streams: a VM runs one callback at a time, and the values are copied out before the callback returns.
	rewritten *rewrite.Buffer
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if h.cfg.Affinity.Enabled {
		// Affinity reads every request header: the request's facts come from that one read (see affinityRequest).
		h.affinityRequest()
		return types.ActionContinue
	}
	h.readRequest()
	return types.ActionContinue
}

// readRequest computes the request's facts from the headers the configuration uses, each read on its own: the
// authority for host scopes and domain: auto, the path for path scopes, the user agent for SameSite=None.
func (h *httpContext) readRequest() {
	var authority, path, ua string
	if len(h.cfg.Scope.Hosts) > 0 || h.cfg.Cookies.DomainAuto {
		authority, _ = requestHeader(":authority")
	}
	if len(h.cfg.Scope.PathPrefixes) > 0 {
		path, _ = requestHeader(":path")
	}
	if h.cfg.Cookies.SameSite == cookie.SameSiteNone {
		ua, _ = requestHeader("user-agent")
	}
	h.req = rewrite.NewRequest(h.cfg, authority, path, ua)
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	affinityOn := h.cfg.Affinity.Enabled
	if !h.req.InScope && !affinityOn {
		return types.ActionContinue
	}
	headers, err := readHeaders(responseHeaders)
	if err != nil {
		proxywasm.LogWarnf("chips: reading response headers: %v", err)
		return types.ActionContinue
	}
	var own string // the affinity cookie to add; always "" in dry run
	if affinityOn {
		own = h.affinityResponse(headers)
		if !h.req.InScope {
			return types.ActionContinue
		}
	}
	// A response sets few cookies: a stack array spares the guest's allocator the three allocations of growing a
	// slice from nil (the slice does not escape).
	var buf [8]string
	values := buf[:0]
	for name, value, ok := headers.next(); ok; name, value, ok = headers.next() {
		if name == "set-cookie" {
			values = append(values, value)
		}
	}
	dropped := false
	if affinityOn && !h.cfg.DryRun {
		values, dropped = affinity.WithoutNamed(values, h.cfg.Affinity.CookieName)
	}
	if len(values) == 0 && own == "" && !dropped {
		return types.ActionContinue
	}
	original := values
	if h.cfg.DryRun {
		original = append([]string(nil), values...)
	}
	var counts rewrite.Counts
	changed := rewrite.Response(h.cfg, &h.req, values, &counts, h.rewritten)
	h.metrics.add(&counts)
	if h.cfg.DryRun {
		if changed {
			logDryRun(original, values)
		}
		return types.ActionContinue
	}
	switch {
	case changed || dropped:
		if own != "" {
			values = append(values, own)
		}
		replaceSetCookies(values)
	case own != "":
		// Only the affinity cookie is new: one call instead of re-adding every cookie.
		if err := proxywasm.AddHttpResponseHeader("set-cookie", own); err != nil {
			proxywasm.LogWarnf("chips: adding set-cookie: %v", err)
		}
	}
	return types.ActionContinue
}

// replaceSetCookies swaps every set-cookie header for the rewritten list. Removing all and adding each back keeps
// one header per cookie and their relative order; replace_header_map_value would collapse them into one, and
// set_header_map_pairs would also rewrite pseudo-headers such as :status.
func replaceSetCookies(values []string) {
	if err := proxywasm.RemoveHttpResponseHeader("set-cookie"); err != nil {
		proxywasm.LogWarnf("chips: removing set-cookie: %v", err)
		return
	}
	for _, v := range values {
		if err := proxywasm.AddHttpResponseHeader("set-cookie", v); err != nil {
			proxywasm.LogWarnf("chips: adding set-cookie: %v", err)
		}
	}
}

// logDryRun logs each change by cookie name and attributes only: cookie values are credentials and must not reach
// the proxy's logs.
func logDryRun(before, after []string) {
	for i := range before {
		if before[i] == after[i] {
			continue
		}
		name, _, _ := strings.Cut(before[i], "=")
		proxywasm.LogInfof("chips: dry_run: cookie %q: attributes %q would become %q",
			strings.TrimSpace(name), attributes(before[i]), attributes(after[i]))
	}
}

func attributes(setCookie string) string {
	if i := strings.IndexByte(setCookie, ';'); i >= 0 {
		return strings.TrimSpace(setCookie[i+1:])
	}
	return ""
}
