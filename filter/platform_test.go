package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// TestWasmFitsGCPServiceExtensions runs build/filter.wasm under Google Cloud Service Extensions' limits: no custom
// metrics (proxy_define_metric answers Unimplemented), 16 MiB of memory for one VM carrying 1,000 streams at once,
// properties only as the load balancer forwards them. The filter must start with one warning about metrics and
// rewrite every cookie of 1,000 concurrent streams on one VM without a failure.
//
// CPU per callback is measured, not asserted: a loaded two-core machine can slow any CPU-bound callback, so the
// budget here is a generous second and the test logs the most one callback used against the platform's 1 ms.
// host's TestPlatformCPUBudget asserts the enforcement itself.
func TestWasmFitsGCPServiceExtensions(t *testing.T) {
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	platform := host.GCPServiceExtensions
	platform.CallbackCPU = time.Second
	streams := platform.StreamsPerInstance
	for _, tc := range []struct {
		name, config, want string
	}{
		{"default", `{}`, "BAYEUX_BROWSER=b1; Path=/; Secure; SameSite=None; Partitioned"},
		{"domain auto", `{"cookies": {"domain": "auto", "http_only": true}}`,
			"BAYEUX_BROWSER=b1; Path=/; Domain=example.com; HttpOnly; Secure; SameSite=None; Partitioned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var logs bytes.Buffer
			h, err := host.New(ctx, host.Options{
				Module: module, PluginConfig: []byte(tc.config), PoolSize: 1, CacheDir: testwasm.CacheDir(),
				Platform: &platform, FailurePolicy: host.FailClosed,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			if err != nil {
				t.Fatal(err)
			}
			open := make([]*host.Stream, streams)
			defer func() {
				// Close waits for every open stream, so a failed assertion must not leave any behind.
				for _, s := range open {
					if s != nil {
						s.Close()
					}
				}
				h.Close(ctx)
			}()
			for i := range open {
				s, err := h.NewStream(ctx, host.StreamInfo{Protocol: "HTTP/2", TLS: true})
				if err != nil {
					t.Fatal(err)
				}
				open[i] = s
				req := [][2]string{{":method", "POST"}, {":path", "/genesys/cometd/connect"}, {":authority", "chat.example.com"}, {":scheme", "https"}}
				if v := s.OnRequestHeaders(req, false); v.Err != nil || v.Local != nil {
					t.Fatalf("stream %d request: %+v", i, v)
				}
			}
			for i, s := range open {
				resp := [][2]string{{":status", "200"}, {"set-cookie", fmt.Sprintf("BAYEUX_BROWSER=b%d; Path=/", i+1)}}
				if v := s.OnResponseHeaders(resp, false); v.Err != nil || v.Local != nil {
					t.Fatalf("stream %d response: %+v", i, v)
				}
				want := strings.Replace(tc.want, "b1", fmt.Sprintf("b%d", i+1), 1)
				if got := setCookieOf(s.ResponseHeaders()); got != want {
					t.Fatalf("stream %d: set-cookie %q, want %q", i, got, want)
				}
			}
			st := h.Stats()
			if st.Traps != 0 || st.Active != int64(streams) {
				t.Errorf("traps %d, active %d; want 0 and %d", st.Traps, st.Active, streams)
			}
			if st.GuestMemoryBytes > int64(platform.MemoryLimitBytes) {
				t.Errorf("guest memory %d bytes", st.GuestMemoryBytes)
			}
			if m := h.Metrics(); len(m) != 0 {
				t.Errorf("metrics defined on a platform without them: %v", m)
			}
			if n := strings.Count(logs.String(), "custom metrics are unavailable"); n != 1 {
				t.Errorf("the metrics warning was logged %d times, want once:\n%s", n, logs.String())
			}
			t.Logf("guest memory %d KiB for %d open streams; most CPU in one callback %v (budget %v)", st.GuestMemoryBytes>>10, streams, st.MaxCallbackCPU, host.GCPServiceExtensions.CallbackCPU)
		})
	}
}

func setCookieOf(h [][2]string) string {
	for _, p := range h {
		if p[0] == "set-cookie" {
			return p[1]
		}
	}
	return ""
}
