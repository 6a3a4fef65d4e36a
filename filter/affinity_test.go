package main

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/seal"
)

// Native tests of the affinity glue. The emulator merges a header added under an existing name and removes only the
// first of several, so each test keeps one header per name; several cookie and set-cookie headers are covered by the
// tests through the real host (host/serve/affinitye2e).

const (
	affinityName = config.DefaultAffinityCookieName
	routing      = config.DefaultRoutingHeader
	upstreamA    = "10.0.0.1:8080"
	upstreamB    = "10.0.0.2:8080"
)

var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func affinityDoc(extra string) string {
	return `{"affinity":{"enabled":true,"keys":["` + testKey + `"]` + extra + `}}`
}

// startAffinity starts the plugin with upstream.address preset to upstream ("" = property absent).
func startAffinity(t *testing.T, cfg, upstream string) proxytest.HostEmulator {
	t.Helper()
	opt := proxytest.NewEmulatorOption().
		WithPluginContext(func(uint32) types.PluginContext { return &pluginContext{} }).
		WithPluginConfiguration([]byte(cfg))
	if upstream != "" {
		opt = opt.WithProperty(upstreamAddressPath, []byte(upstream))
	}
	host, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(reset)
	if st := host.StartPlugin(); st != types.OnPluginStartStatusOK {
		t.Fatalf("start: %v", st)
	}
	return host
}

// exchange is one stream's outcome: the request as the upstream would see it and the response as the client would.
type exchange struct{ req, resp [][2]string }

func stream(t *testing.T, host proxytest.HostEmulator, req, resp [][2]string) exchange {
	t.Helper()
	// The emulator edits the slices it is given in place; callers reuse theirs.
	req, resp = slices.Clone(req), slices.Clone(resp)
	id := host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, req, false); a != types.ActionContinue {
		t.Fatalf("request headers: action %v", a)
	}
	var x exchange
	x.req = host.GetCurrentRequestHeaders(id)
	if a := host.CallOnResponseHeaders(id, resp, false); a != types.ActionContinue {
		t.Fatalf("response headers: action %v", a)
	}
	x.resp = host.GetCurrentResponseHeaders(id)
	host.CompleteHttpContext(id)
	return x
}

func browserRequest(extra ...[2]string) [][2]string {
	return append(request("chat.example.com", "/genesys/cometd", chromeUA), extra...)
}

func values(h [][2]string, name string) []string {
	var out []string
	for _, kv := range h {
		if kv[0] == name {
			out = append(out, kv[1])
		}
	}
	return out
}

// tokenOf returns the affinity token value in a response's Set-Cookie headers, "" when there is none.
func tokenOf(t *testing.T, resp [][2]string) string {
	t.Helper()
	var found []string
	for _, sc := range values(resp, "set-cookie") {
		if v, ok := strings.CutPrefix(sc, affinityName+"="); ok {
			v, _, _ = strings.Cut(v, ";")
			found = append(found, v)
		}
	}
	if len(found) > 1 {
		t.Fatalf("affinity cookie set %d times: %q", len(found), values(resp, "set-cookie"))
	}
	if len(found) == 0 {
		return ""
	}
	return found[0]
}

// testSealer opens and seals with the test key, as a second proxy replica would.
func testSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	cfg, err := config.Parse([]byte(affinityDoc("")), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Affinity.Sealer
}

func TestAffinityFirstResponsePinsAndNextRequestRoutes(t *testing.T) {
	host := startAffinity(t, affinityDoc(""), upstreamA)
	routeA := affinity.EncodeRoutingValue(upstreamA)

	first := stream(t, host, browserRequest(),
		[][2]string{{":status", "200"}, {routing, routeA}, {"content-type", "application/json"}})
	if got := values(first.resp, routing); got != nil {
		t.Errorf("routing header reached the client: %q", got)
	}
	sc := values(first.resp, "set-cookie")
	if len(sc) != 1 {
		t.Fatalf("set-cookie = %q, want the affinity cookie", sc)
	}
	for _, attr := range []string{"; Path=/", "; Secure", "; HttpOnly", "; SameSite=None", "; Partitioned"} {
		if !strings.Contains(sc[0], attr) {
			t.Errorf("affinity cookie %q lacks %q", sc[0], attr)
		}
	}
	if strings.Contains(sc[0], "Domain=") || strings.Contains(sc[0], "Max-Age") {
		t.Errorf("affinity cookie %q: a __Host- session cookie has neither Domain nor Max-Age", sc[0])
	}
	if got := values(first.resp, "cache-control"); len(got) != 1 || got[0] != "private" {
		t.Errorf("cache-control = %q, want private (nocache)", got)
	}
	value := tokenOf(t, first.resp)
	tok, err := testSealer(t).Open(value, affinityName)
	if err != nil || tok.Upstream != upstreamA {
		t.Fatalf("issued token: %+v, %v", tok, err)
	}
	if n := counter(t, host, actionMetric(affinity.Issue)); n != 1 {
		t.Errorf("%s = %d, want 1", actionMetric(affinity.Issue), n)
	}

	// The browser comes back with the cookie among others, and tries to pin another host by hand.
	next := stream(t, host,
		browserRequest([2]string{"cookie", "a=1; " + affinityName + "=" + value + "; b=2"},
			[2]string{routing, affinity.EncodeRoutingValue(upstreamB)}),
		[][2]string{{":status", "200"}, {"cache-control", "public, max-age=60"}})
	if got := values(next.req, routing); len(got) != 1 || got[0] != routeA {
		t.Errorf("routing header to the stateful session = %q, want only %q", got, routeA)
	}
	if got := values(next.req, "cookie"); len(got) != 1 || got[0] != "a=1; b=2" {
		t.Errorf("upstream sees cookie %q, want the others only (indirect)", got)
	}
	if v := tokenOf(t, next.resp); v != "" {
		t.Errorf("re-issued within the refresh interval: %q", v)
	}
	if got := values(next.resp, "cache-control"); len(got) != 1 || got[0] != "public, max-age=60" {
		t.Errorf("cache-control changed without a cookie: %q", got)
	}
	if n := counter(t, host, verdictMetric(affinity.Honoured)); n != 1 {
		t.Errorf("%s = %d, want 1", verdictMetric(affinity.Honoured), n)
	}
}

func TestAffinityRejectsAndReplaces(t *testing.T) {
	s := testSealer(t)
	now := time.Now()
	sealAt := func(issued, seen time.Time) string {
		v, err := s.Seal(seal.Token{Upstream: upstreamA, Issued: issued, LastSeen: seen}, affinityName)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	valid := sealAt(now, now)
	// One character of the ciphertext changed; away from the end, so the encoding stays canonical.
	flip := byte('A')
	if valid[40] == 'A' {
		flip = 'B'
	}
	tampered := valid[:40] + string(flip) + valid[41:]
	tests := []struct {
		name, value, metric string
	}{
		{"garbage", "not-a-token", verdictMetric(affinity.RejectedMalformed)},
		{"tampered", tampered, verdictMetric(affinity.RejectedTampered)},
		{"idle", sealAt(now.Add(-2*time.Hour), now.Add(-time.Hour)), verdictMetric(affinity.RejectedExpiredIdle)},
		{"too old", sealAt(now.Add(-48*time.Hour), now), verdictMetric(affinity.RejectedExpiredLife)},
		{"from the future", sealAt(now.Add(time.Hour), now.Add(time.Hour)), verdictMetric(affinity.RejectedFromFuture)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := startAffinity(t, affinityDoc(""), upstreamB)
			x := stream(t, host, browserRequest([2]string{"cookie", affinityName + "=" + tt.value}),
				[][2]string{{":status", "200"}})
			if got := values(x.req, routing); got != nil {
				t.Errorf("rejected token still routed: %q", got)
			}
			if got := values(x.req, "cookie"); got != nil {
				t.Errorf("upstream sees %q; the only cookie was the affinity one", got)
			}
			if n := counter(t, host, tt.metric); n != 1 {
				t.Errorf("%s = %d, want 1", tt.metric, n)
			}
			tok, err := s.Open(tokenOf(t, x.resp), affinityName)
			if err != nil || tok.Upstream != upstreamB {
				t.Errorf("replacement token %+v, %v; want one for %s", tok, err, upstreamB)
			}
			if n := counter(t, host, actionMetric(affinity.Issue)); n != 1 {
				t.Errorf("%s = %d, want 1", actionMetric(affinity.Issue), n)
			}
		})
	}
}

func TestAffinityRepinsAndRefreshes(t *testing.T) {
	host := startAffinity(t, affinityDoc(""), upstreamA)
	s := testSealer(t)
	now := time.Now()
	old, err := s.Seal(seal.Token{Upstream: upstreamA, Issued: now.Add(-time.Hour), LastSeen: now.Add(-5 * time.Minute)}, affinityName)
	if err != nil {
		t.Fatal(err)
	}
	req := browserRequest([2]string{"cookie", affinityName + "=" + old})

	refreshed := stream(t, host, req, [][2]string{{":status", "200"}})
	tok, err := s.Open(tokenOf(t, refreshed.resp), affinityName)
	if err != nil || tok.Upstream != upstreamA || !tok.Issued.Equal(now.Add(-time.Hour).Truncate(time.Second)) ||
		tok.LastSeen.Before(now.Truncate(time.Second)) {
		t.Errorf("refreshed token %+v, %v: want same upstream and issue time, last seen now", tok, err)
	}
	if n := counter(t, host, actionMetric(affinity.Refresh)); n != 1 {
		t.Errorf("%s = %d, want 1", actionMetric(affinity.Refresh), n)
	}

	// The pinned host is gone: Envoy picked B and announces it on the response.
	if err := host.SetProperty(upstreamAddressPath, []byte(upstreamB)); err != nil {
		t.Fatal(err)
	}
	moved := stream(t, host, req, [][2]string{{":status", "200"}, {routing, affinity.EncodeRoutingValue(upstreamB)}})
	if got := values(moved.resp, routing); got != nil {
		t.Errorf("routing header reached the client: %q", got)
	}
	tok, err = s.Open(tokenOf(t, moved.resp), affinityName)
	if err != nil || tok.Upstream != upstreamB {
		t.Errorf("re-pinned token %+v, %v", tok, err)
	}
	if n := counter(t, host, actionMetric(affinity.Repin)); n != 1 {
		t.Errorf("%s = %d, want 1", actionMetric(affinity.Repin), n)
	}
	if n := counter(t, host, verdictMetric(affinity.Honoured)); n != 2 {
		t.Errorf("%s = %d, want 2", verdictMetric(affinity.Honoured), n)
	}
}

func TestAffinityReplacesUpstreamCookieOfSameName(t *testing.T) {
	host := startAffinity(t, affinityDoc(""), upstreamA)
	x := stream(t, host, browserRequest(), [][2]string{{":status", "200"}, {"set-cookie", affinityName + "=fromupstream; Path=/; Secure"}})
	sc := values(x.resp, "set-cookie")
	if len(sc) != 1 || strings.Contains(sc[0], "fromupstream") {
		t.Fatalf("set-cookie = %q, want only the filter's own", sc)
	}
	if _, err := testSealer(t).Open(tokenOf(t, x.resp), affinityName); err != nil {
		t.Errorf("own cookie does not open: %v", err)
	}
}

func TestAffinityNoUpstreamNoCookie(t *testing.T) {
	host := startAffinity(t, affinityDoc(""), "")
	x := stream(t, host, browserRequest(), [][2]string{{":status", "503"}, {"cache-control", "max-age=5"}})
	if sc := values(x.resp, "set-cookie"); sc != nil {
		t.Errorf("cookie issued without an upstream: %q", sc)
	}
	if cc := values(x.resp, "cache-control"); len(cc) != 1 || cc[0] != "max-age=5" {
		t.Errorf("cache-control changed: %q", cc)
	}
}

func TestAffinityOptions(t *testing.T) {
	host := startAffinity(t, affinityDoc(`,"indirect":false,"nocache":false,"max_age":"1h","cookie_name":"sticky","routing_header":"X-Route"`), upstreamA)
	first := stream(t, host, browserRequest(), [][2]string{{":status", "200"}, {"x-route", "c29tZXdoZXJl"}, {"cache-control", "public"}})
	if got := values(first.resp, "x-route"); got != nil {
		t.Errorf("custom routing header reached the client: %q", got)
	}
	if cc := values(first.resp, "cache-control"); len(cc) != 1 || cc[0] != "public" {
		t.Errorf("nocache off changed cache-control: %q", cc)
	}
	sc := values(first.resp, "set-cookie")
	if len(sc) != 1 || !strings.HasPrefix(sc[0], "sticky=") || !strings.Contains(sc[0], "; Max-Age=3600") {
		t.Fatalf("set-cookie = %q", sc)
	}
	value, _, _ := strings.Cut(strings.TrimPrefix(sc[0], "sticky="), ";")
	next := stream(t, host, browserRequest([2]string{"cookie", "sticky=" + value}), [][2]string{{":status", "200"}})
	if got := values(next.req, "cookie"); len(got) != 1 || got[0] != "sticky="+value {
		t.Errorf("indirect off: upstream sees %q", got)
	}
	if got := values(next.req, "x-route"); len(got) != 1 || got[0] != affinity.EncodeRoutingValue(upstreamA) {
		t.Errorf("x-route = %q", got)
	}
}

func TestAffinityOutOfScope(t *testing.T) {
	host := startAffinity(t, `{"scope":{"path_prefixes":["/genesys/"]},`+affinityDoc("")[1:], upstreamA)
	req := append(request("chat.example.com", "/static/app.js", chromeUA), [2]string{routing, "MTAuMC4wLjk6ODA="})
	x := stream(t, host, req, [][2]string{{":status", "200"}, {routing, affinity.EncodeRoutingValue(upstreamA)}})
	if got := values(x.req, routing); got != nil {
		t.Errorf("client routing header kept out of scope: %q", got)
	}
	if got := values(x.resp, routing); got != nil {
		t.Errorf("routing header reached the client out of scope: %q", got)
	}
	if sc := values(x.resp, "set-cookie"); sc != nil {
		t.Errorf("cookie issued out of scope: %q", sc)
	}
}

func TestAffinityDryRunChangesNothing(t *testing.T) {
	host := startAffinity(t, `{"dry_run":true,`+affinityDoc("")[1:], upstreamA)
	req := browserRequest([2]string{"cookie", affinityName + "=junk"}, [2]string{routing, "MTAuMC4wLjk6ODA="})
	resp := [][2]string{{":status", "200"}, {routing, affinity.EncodeRoutingValue(upstreamA)}}
	x := stream(t, host, req, resp)
	if len(x.req) != len(req) || len(x.resp) != len(resp) {
		t.Errorf("dry run changed headers:\nrequest %q\nresponse %q", x.req, x.resp)
	}
	if n := counter(t, host, verdictMetric(affinity.RejectedMalformed)); n != 1 {
		t.Errorf("%s = %d, want 1", verdictMetric(affinity.RejectedMalformed), n)
	}
	if n := counter(t, host, actionMetric(affinity.Issue)); n != 1 {
		t.Errorf("dry run must count what it would issue: %s = %d", actionMetric(affinity.Issue), n)
	}
	if logs := strings.Join(host.GetInfoLogs(), "\n"); !strings.Contains(logs, "would be issued") {
		t.Errorf("dry run did not log: %q", logs)
	}
}

func TestAffinityOffTouchesNothing(t *testing.T) {
	host := startAffinity(t, "{}", upstreamA)
	req := browserRequest([2]string{"cookie", affinityName + "=x"}, [2]string{routing, "MTAuMC4wLjk6ODA="})
	x := stream(t, host, req, [][2]string{{":status", "200"}, {routing, "MTAuMC4wLjk6ODA="}})
	if got := values(x.req, routing); len(got) != 1 {
		t.Errorf("affinity off removed the routing header: %q", x.req)
	}
	if got := values(x.resp, "set-cookie"); got != nil {
		t.Errorf("affinity off issued a cookie: %q", got)
	}
	if _, err := host.GetCounterMetric(actionMetric(affinity.Issue)); err == nil {
		t.Errorf("affinity metrics defined while affinity is off")
	}
}

// With affinity on, the request's authority, path and user agent come from the one read of all request headers:
// the host scope, domain: auto and the user-agent check see them as they do without affinity.
func TestAffinityRequestFactsFromHeaderPairs(t *testing.T) {
	host := startAffinity(t, `{"cookies":{"domain":"auto"},"scope":{"hosts":["chat.example.com"],"path_prefixes":["/genesys/"]},`+
		affinityDoc("")[1:], upstreamA)
	resp := [][2]string{{":status", "200"}, {"set-cookie", "a=b; Path=/"}}

	// The emulator joins added headers into one (see plugin_test.go), so the cookies are checked in that one.
	x := stream(t, host, browserRequest(), resp)
	sc := strings.Join(values(x.resp, "set-cookie"), "\n")
	if !strings.HasPrefix(sc, "a=b; Path=/; Domain=example.com; Secure; SameSite=None") {
		t.Errorf("in scope: %q lacks the registrable domain or SameSite=None", sc)
	}
	if !strings.Contains(sc, affinityName+"=") {
		t.Errorf("in scope: no affinity cookie in %q", sc)
	}

	ios12 := "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1"
	x = stream(t, host, request("chat.example.com", "/genesys/cometd", ios12), resp)
	for _, sc := range values(x.resp, "set-cookie") {
		if strings.Contains(strings.ToLower(sc), "samesite") {
			t.Errorf("iOS 12 client got SameSite: %q", sc)
		}
	}

	for _, req := range [][][2]string{
		request("shop.example.com", "/genesys/cometd", chromeUA),
		request("chat.example.com", "/static/app.js", chromeUA),
	} {
		x = stream(t, host, req, resp)
		if got := values(x.resp, "set-cookie"); len(got) != 1 || got[0] != "a=b; Path=/" {
			t.Errorf("out of scope (%q): set-cookie %q, want it untouched and no affinity cookie", req, got)
		}
	}
}
