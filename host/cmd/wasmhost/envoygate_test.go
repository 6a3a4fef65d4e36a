package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// TestServeSurvivesEnvoy133 is the Envoy gate through `wasmhost serve --envoy 1.33`: the filter as `make build` makes
// it, under Envoy 1.33's Wasm host (the strictest profile, also the default), two instances, 64 keep-alive clients at once, for each of the
// default and the affinity configuration. Every response must be the upstream's 200, the host must count no guest
// failure, and the guests' memory must stay flat after the warm-up (testwasm.CheckGuestMemoryFlat) (40,000 requests per instance,
// what the filter's heap takes to settle). Counts only; no timing. Under -race or -short the gate runs 4,000
// requests, too few for the heap to settle: the memory check needs the full run, which `make test` does.
func TestServeSurvivesEnvoy133(t *testing.T) {
	requests, warm := 120_000, 80_000
	full := !raceEnabled && !testing.Short()
	if !full {
		requests, warm = 4_000, 2_000
	}
	wasm := testwasm.Filter(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; Path=/; HttpOnly")
		w.Header().Add("Set-Cookie", "JSESSIONID=node01ab2cd3ef4gh5ij6kl7mn8op9.node0; Path=/genesys; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly")
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	for _, config := range []string{"default.json", "affinity.json"} {
		t.Run(config, func(t *testing.T) {
			srv, _ := startServeCmd(t, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--wasm", wasm,
				"--cache-dir", cacheDir, "--config", "../../../testdata/config/"+config, "--upstream", up.URL,
				"--pool", "2", "--failure-policy", "reload", "--log-level", "error", "--envoy", "1.33")
			const clients = 64
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
			defer client.CloseIdleConnections()
			var bad atomic.Int64
			var firstBad atomic.Value
			load := func(n int) {
				var next atomic.Int64
				var wg sync.WaitGroup
				for range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(n) {
							resp, err := client.Get(srv.URL() + "/genesys/cometd/connect")
							if err != nil {
								bad.Add(1)
								firstBad.CompareAndSwap(nil, err.Error())
								continue
							}
							body, _ := io.ReadAll(resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 || string(body) != "ok" || len(resp.Header["Set-Cookie"]) < 2 {
								bad.Add(1)
								firstBad.CompareAndSwap(nil, fmt.Sprintf("%s %q %q", resp.Status, body, resp.Header["Set-Cookie"]))
							}
						}
					}()
				}
				wg.Wait()
			}
			load(warm)
			memWarm := adminStat(t, srv.AdminURL(), "wasmhost_guest_memory_bytes")
			load(requests - warm)
			stats := adminStats(t, srv.AdminURL())
			t.Logf("%d requests, %d clients: %d bad answers, streams %d, guest failures %d, 503s from failures %d, guest memory %d B after warm-up, %d B at end",
				requests, clients, bad.Load(), stats["wasmhost_streams_total"], stats[`wasmhost_guest_failures_total{policy="reload"}`],
				stats["wasmhost_guest_fail_closed_total"], memWarm, stats["wasmhost_guest_memory_bytes"])
			if bad.Load() != 0 {
				t.Errorf("%d answers were not the upstream's 200; first: %v", bad.Load(), firstBad.Load())
			}
			if got := stats["wasmhost_streams_total"]; got != int64(requests) {
				t.Errorf("streams = %d, want %d", got, requests)
			}
			for _, name := range []string{`wasmhost_guest_failures_total{policy="reload"}`, "wasmhost_guest_fail_closed_total", "wasmhost_instance_reloads_total"} {
				if got, ok := stats[name]; !ok || got != 0 {
					t.Errorf("%s = %d (present %v), want 0", name, got, ok)
				}
			}
			got := stats["wasmhost_guest_memory_bytes"]
			if got == 0 {
				t.Errorf("guest memory not reported")
			}
			if full {
				if err := testwasm.CheckGuestMemoryFlat(memWarm, got, requests-warm); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// adminStats reads the admin listener's /stats (Prometheus text) into name{labels} -> value.
func adminStats(t *testing.T, admin string) map[string]int64 {
	t.Helper()
	resp, err := http.Get(admin + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseInt(line[i+1:], 10, 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func adminStat(t *testing.T, admin, name string) int64 {
	t.Helper()
	v, ok := adminStats(t, admin)[name]
	if !ok {
		t.Fatalf("/stats lacks %s", name)
	}
	return v
}
