package main

import (
	"context"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// behaviourCase is one whole response through the filter: the config, the request, the response headers in, and
// the response headers expected out. Every case runs twice: natively through the SDK emulator
// ("go") and through build/filter.wasm in our host ("wasm"), which behaves like Envoy.
type behaviourCase struct {
	name    string
	config  string
	req     [][2]string
	resp    [][2]string
	want    [][2]string
	metrics map[string]int64
	// multi marks responses with several Set-Cookie headers: the SDK emulator merges added headers into one, so
	// those run through the wasm half only.
	multi bool
}

var behaviourCases = []behaviourCase{
	{
		name: "vendor example",
		req:  request("chat.example.com", "/genesys/cometd", chromeUA),
		resp: [][2]string{{":status", "200"}, {"set-cookie", "BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; HttpOnly; Path=/"}},
		want: [][2]string{{":status", "200"}, {"set-cookie",
			"BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; HttpOnly; Path=/; Secure; SameSite=None; Partitioned"}},
		metrics: map[string]int64{cookieMetric(rewrite.Rewritten): 1},
	},
	{
		name: "lax replaced, compliant kept, order of headers kept",
		req:  request("chat.example.com", "/", chromeUA),
		resp: [][2]string{{":status", "200"}, {"content-type", "application/json"},
			{"set-cookie", "JSESSIONID=abc; Path=/; SameSite=Lax; Secure"},
			{"cache-control", "no-store"},
			{"set-cookie", "GMSLB=node1; Secure; SameSite=None; Partitioned"},
			{"set-cookie", "theme=dark; Expires=Wed, 21 Oct 2037 07:28:00 GMT"}},
		want: [][2]string{{":status", "200"}, {"content-type", "application/json"}, {"cache-control", "no-store"},
			{"set-cookie", "JSESSIONID=abc; Path=/; SameSite=None; Secure; Partitioned"},
			{"set-cookie", "GMSLB=node1; Secure; SameSite=None; Partitioned"},
			{"set-cookie", "theme=dark; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure; SameSite=None; Partitioned"}},
		metrics: map[string]int64{cookieMetric(rewrite.Rewritten): 2, cookieMetric(rewrite.Compliant): 1},
		multi:   true,
	},
	{
		name:    "nothing to change leaves headers in place",
		req:     request("chat.example.com", "/", chromeUA),
		resp:    [][2]string{{":status", "200"}, {"set-cookie", "a=1; Secure; SameSite=None; Partitioned"}, {"x-b", "2"}},
		want:    [][2]string{{":status", "200"}, {"set-cookie", "a=1; Secure; SameSite=None; Partitioned"}, {"x-b", "2"}},
		metrics: map[string]int64{cookieMetric(rewrite.Compliant): 1, cookieMetric(rewrite.Rewritten): 0},
	},
	{
		name:   "domain auto and selection",
		config: `{"cookies":{"include":["BAYEUX_*","__Host-*"],"domain":"auto","http_only":true}}`,
		req:    request("chat.example.co.uk:443", "/", chromeUA),
		resp: [][2]string{{":status", "200"}, {"set-cookie", "BAYEUX_BROWSER=x"}, {"set-cookie", "other=y"},
			{"set-cookie", "__Host-BAYEUX_S=z; Path=/; Secure"}},
		want: [][2]string{{":status", "200"},
			{"set-cookie", "BAYEUX_BROWSER=x; Domain=example.co.uk; HttpOnly; Secure; SameSite=None; Partitioned"},
			{"set-cookie", "other=y"},
			{"set-cookie", "__Host-BAYEUX_S=z; Path=/; Secure; HttpOnly; SameSite=None; Partitioned"}},
		metrics: map[string]int64{cookieMetric(rewrite.Rewritten): 2, cookieMetric(rewrite.SkippedSelection): 1},
		multi:   true,
	},
	{
		name:    "malformed passes through",
		req:     request("chat.example.com", "/", chromeUA),
		resp:    [][2]string{{":status", "200"}, {"set-cookie", "no equals sign"}},
		want:    [][2]string{{":status", "200"}, {"set-cookie", "no equals sign"}},
		metrics: map[string]int64{cookieMetric(rewrite.Malformed): 1},
	},
}

// normalise orders the result for comparison: the filter moves Set-Cookie headers after the others (remove + add),
// which HTTP allows, while keeping their relative order and every other header's order.
func normalise(h [][2]string) [][2]string {
	var other, cookies [][2]string
	for _, kv := range h {
		if kv[0] == "set-cookie" {
			cookies = append(cookies, kv)
		} else {
			other = append(other, kv)
		}
	}
	return append(other, cookies...)
}

func TestBehaviourGo(t *testing.T) {
	for _, tc := range behaviourCases {
		if tc.multi {
			continue // see behaviourCase.multi
		}
		t.Run(tc.name, func(t *testing.T) {
			host, st := startPlugin(t, tc.config)
			if st != types.OnPluginStartStatusOK {
				t.Fatalf("start: %v", st)
			}
			got := roundTrip(t, host, tc.req, slices.Clone(tc.resp))
			if !reflect.DeepEqual(normalise(got), normalise(tc.want)) {
				t.Errorf("response headers\n got %q\nwant %q", got, tc.want)
			}
			for name, want := range tc.metrics {
				if got := counter(t, host, name); int64(got) != want {
					t.Errorf("%s = %d, want %d", name, got, want)
				}
			}
		})
	}
}

func TestBehaviourWasm(t *testing.T) {
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range behaviourCases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := host.New(ctx, host.Options{Module: module, PluginConfig: []byte(tc.config), PoolSize: 1, CacheDir: testwasm.CacheDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close(ctx)
			s, err := h.NewStream(ctx, host.StreamInfo{Protocol: "HTTP/1.1", TLS: true})
			if err != nil {
				t.Fatal(err)
			}
			if v := s.OnRequestHeaders(tc.req, true); v.Local != nil || v.Err != nil {
				t.Fatalf("request: %+v", v)
			}
			if v := s.OnResponseHeaders(slices.Clone(tc.resp), false); v.Local != nil || v.Err != nil {
				t.Fatalf("response: %+v", v)
			}
			got := slices.Clone(s.ResponseHeaders())
			s.Close()
			if !reflect.DeepEqual(normalise(got), normalise(tc.want)) {
				t.Errorf("response headers\n got %q\nwant %q", got, tc.want)
			}
			values := map[string]int64{}
			for _, m := range h.Metrics() {
				values[m.Name] = m.Value
			}
			for name, want := range tc.metrics {
				if values[name] != want {
					t.Errorf("%s = %d, want %d (all: %v)", name, values[name], want, values)
				}
			}
		})
	}
}

// TestWasmLoadsInEnvoy133 checks the built module against what Envoy 1.33 provides and what it looks for.
func TestWasmLoadsInEnvoy133(t *testing.T) {
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	info, err := host.Inspect(module)
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := host.EnvoyImports("1.33")
	if err != nil {
		t.Fatal(err)
	}
	if missing := host.CheckCompatibility(info, allowed); len(missing) > 0 {
		t.Errorf("imports Envoy 1.33 lacks: %v", missing)
	}
	exports := map[string]bool{}
	for _, e := range info.Exports {
		exports[e.Name] = true
	}
	for _, name := range []string{"proxy_abi_version_0_2_1", "proxy_on_context_create", "proxy_on_vm_start",
		"proxy_on_configure", "proxy_on_request_headers", "proxy_on_response_headers", "proxy_on_log",
		"proxy_on_done", "proxy_on_delete", "memory", "_initialize"} {
		if !exports[name] {
			t.Errorf("module does not export %s", name)
		}
	}
	t.Logf("filter.wasm: %d bytes, %d imports", len(module), len(info.Imports))
}

// TestWasmRefusesBadConfig: a bad configuration makes plugin start fail, so the host (like Envoy) refuses it.
func TestWasmRefusesBadConfig(t *testing.T) {
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = host.New(context.Background(), host.Options{Module: module, PluginConfig: []byte(`{"cookies":{"same_site":"none!"}}`), CacheDir: testwasm.CacheDir()})
	if err == nil {
		t.Fatal("host.New accepted a bad configuration")
	}
}
