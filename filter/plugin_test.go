package main

import (
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
)

// These tests drive the glue natively through the SDK's emulator. The emulator's add_header_map_value appends to an
// existing header instead of adding a new one (and its remove drops only the first), so responses with several
// Set-Cookie headers are tested through build/filter.wasm in our host instead (the wasm half of behaviour_test.go),
// which behaves like Envoy.

const chromeUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func startPlugin(t *testing.T, cfg string) (proxytest.HostEmulator, types.OnPluginStartStatus) {
	t.Helper()
	opt := proxytest.NewEmulatorOption().
		WithPluginContext(func(uint32) types.PluginContext { return &pluginContext{} }).
		WithPluginConfiguration([]byte(cfg))
	host, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(reset)
	return host, host.StartPlugin()
}

// roundTrip runs one stream and returns the response headers the filter leaves.
func roundTrip(t *testing.T, host proxytest.HostEmulator, req, resp [][2]string) [][2]string {
	t.Helper()
	id := host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, req, false); a != types.ActionContinue {
		t.Fatalf("request headers: action %v", a)
	}
	if a := host.CallOnResponseHeaders(id, resp, false); a != types.ActionContinue {
		t.Fatalf("response headers: action %v", a)
	}
	out := host.GetCurrentResponseHeaders(id)
	host.CompleteHttpContext(id)
	return out
}

func request(authority, path, ua string) [][2]string {
	return [][2]string{{":method", "POST"}, {":path", path}, {":authority", authority}, {":scheme", "https"}, {"user-agent", ua}}
}

func setCookies(h [][2]string) []string {
	var out []string
	for _, kv := range h {
		if kv[0] == "set-cookie" {
			out = append(out, kv[1])
		}
	}
	return out
}

func counter(t *testing.T, host proxytest.HostEmulator, name string) uint64 {
	t.Helper()
	v, err := host.GetCounterMetric(name)
	if err != nil {
		t.Fatalf("metric %s: %v", name, err)
	}
	return v
}

func TestPluginRewritesVendorExample(t *testing.T) {
	host, st := startPlugin(t, "")
	if st != types.OnPluginStartStatusOK {
		t.Fatalf("start: %v", st)
	}
	resp := [][2]string{{":status", "200"}, {"content-type", "application/json"},
		{"set-cookie", "BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; HttpOnly; Path=/"}}
	got := setCookies(roundTrip(t, host, request("chat.example.com", "/genesys/cometd", chromeUA), resp))
	if len(got) != 1 {
		t.Fatalf("set-cookie headers = %q", got)
	}
	for _, attr := range []string{"; Secure", "; SameSite=None", "; Partitioned", "; HttpOnly", "; Path=/"} {
		if !strings.Contains(got[0], attr) {
			t.Errorf("rewritten cookie %q lacks %q", got[0], attr)
		}
	}
	if !strings.HasPrefix(got[0], "BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv;") {
		t.Errorf("name/value changed: %q", got[0])
	}
	if n := counter(t, host, cookieMetric(rewrite.Rewritten)); n != 1 {
		t.Errorf("%s = %d, want 1", cookieMetric(rewrite.Rewritten), n)
	}
	// The same response again, now already compliant, is counted as such and left alone.
	resp[2][1] = got[0]
	again := setCookies(roundTrip(t, host, request("chat.example.com", "/", chromeUA), resp))
	if len(again) != 1 || again[0] != got[0] {
		t.Errorf("second pass changed %q to %q", got[0], again)
	}
	if n := counter(t, host, cookieMetric(rewrite.Compliant)); n != 1 {
		t.Errorf("%s = %d, want 1", cookieMetric(rewrite.Compliant), n)
	}
}

func TestPluginRefusesBadConfig(t *testing.T) {
	host, st := startPlugin(t, `{"cookies":{"same_site":"none!"}}`)
	if st != types.OnPluginStartStatusFailed {
		t.Fatalf("start status = %v, want failed", st)
	}
	logs := strings.Join(host.GetCriticalLogs(), "\n")
	if !strings.Contains(logs, "cookies.same_site") {
		t.Errorf("critical log %q does not name the field", logs)
	}
}

func TestPluginScopeSelectionAndUserAgent(t *testing.T) {
	host, st := startPlugin(t, `{"cookies":{"exclude":["_ga*"]},"scope":{"path_prefixes":["/genesys/"]}}`)
	if st != types.OnPluginStartStatusOK {
		t.Fatalf("start: %v", st)
	}
	cookie := "BAYEUX_BROWSER=abc; Path=/"
	resp := func(c string) [][2]string { return [][2]string{{":status", "200"}, {"set-cookie", c}} }

	if got := setCookies(roundTrip(t, host, request("chat.example.com", "/other", chromeUA), resp(cookie))); got[0] != cookie {
		t.Errorf("out-of-scope request rewritten: %q", got)
	}
	if got := setCookies(roundTrip(t, host, request("chat.example.com", "/genesys/x", chromeUA), resp("_ga=1; Path=/"))); got[0] != "_ga=1; Path=/" {
		t.Errorf("excluded cookie rewritten: %q", got)
	}
	if n := counter(t, host, cookieMetric(rewrite.SkippedSelection)); n != 1 {
		t.Errorf("%s = %d, want 1", cookieMetric(rewrite.SkippedSelection), n)
	}
	ios12 := "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1"
	got := setCookies(roundTrip(t, host, request("chat.example.com", "/genesys/x", ios12), resp("BAYEUX_BROWSER=abc; SameSite=None; Secure")))
	if strings.Contains(strings.ToLower(got[0]), "samesite") {
		t.Errorf("iOS 12 client got SameSite: %q", got)
	}
	if n := counter(t, host, cookieMetric(rewrite.SkippedUserAgent)); n != 1 {
		t.Errorf("%s = %d, want 1", cookieMetric(rewrite.SkippedUserAgent), n)
	}
}

func TestPluginMalformedPassesThrough(t *testing.T) {
	host, _ := startPlugin(t, "{}")
	bad := "no equals sign here"
	got := setCookies(roundTrip(t, host, request("chat.example.com", "/", chromeUA), [][2]string{{":status", "200"}, {"set-cookie", bad}}))
	if len(got) != 1 || got[0] != bad {
		t.Errorf("malformed cookie changed: %q", got)
	}
	if n := counter(t, host, cookieMetric(rewrite.Malformed)); n != 1 {
		t.Errorf("%s = %d, want 1", cookieMetric(rewrite.Malformed), n)
	}
}

func TestPluginDryRunChangesNothing(t *testing.T) {
	host, _ := startPlugin(t, `{"dry_run":true}`)
	c := "BAYEUX_BROWSER=secretvalue; HttpOnly; SameSite=Lax"
	got := setCookies(roundTrip(t, host, request("chat.example.com", "/", chromeUA), [][2]string{{":status", "200"}, {"set-cookie", c}}))
	if len(got) != 1 || got[0] != c {
		t.Errorf("dry run changed the response: %q", got)
	}
	if n := counter(t, host, cookieMetric(rewrite.Rewritten)); n != 1 {
		t.Errorf("dry run must still count: %s = %d", cookieMetric(rewrite.Rewritten), n)
	}
	logs := strings.Join(host.GetInfoLogs(), "\n")
	if !strings.Contains(logs, "dry_run") || !strings.Contains(logs, "BAYEUX_BROWSER") {
		t.Errorf("dry run did not log the change: %q", logs)
	}
	if strings.Contains(logs, "secretvalue") {
		t.Errorf("dry run logged a cookie value: %q", logs)
	}
}
