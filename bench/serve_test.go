package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/serve"
)

var latenciesOut = flag.String("latencies", "", "add the serve benchmark's request latencies (ns) to this JSON file (relative to the repository root)")

// Serve modes: the same proxy without a filter and with the filter.
const (
	ModeNoFilter = "filter=off"
	ModeFilter   = "filter=on"
)

// serveClients is the number of concurrent keep-alive clients of the serve benchmark.
var serveClients = envInt("CHIPS_BENCH_CLIENTS", 8)

// serveEnv is one upstream and two proxies in front of it, started once per test binary and shared by every run of
// BenchmarkServe, so that the runs of the two modes alternate on warm servers and connections.
type serveEnv struct {
	cancel   context.CancelFunc
	done     sync.WaitGroup
	upstream *http.Server
	loads    map[string]*Load
	host     *host.Host
}

var (
	serveOnce  sync.Once
	serveState *serveEnv
	serveErr   error

	latMu     sync.Mutex
	latencies = map[string][]int64{}
)

func startServe(tb testing.TB) *serveEnv {
	serveOnce.Do(func() { serveState, serveErr = newServeEnv(tb) })
	if serveErr != nil {
		tb.Fatal(serveErr)
	}
	return serveState
}

func newServeEnv(tb testing.TB) (*serveEnv, error) {
	module := FilterModule(tb)
	ctx, cancel := context.WithCancel(context.Background())
	env := &serveEnv{cancel: cancel, loads: map[string]*Load{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bench: upstream: %w", err)
	}
	env.upstream = &http.Server{Handler: ChatUpstream(), ReadHeaderTimeout: 10 * time.Second}
	env.done.Add(1)
	go func() { defer env.done.Done(); _ = env.upstream.Serve(ln) }()
	up, _ := url.Parse("http://" + ln.Addr().String())

	h, err := host.New(ctx, host.Options{Module: module, CacheDir: CacheDir(), Logger: Discard()})
	if err != nil {
		env.close()
		return nil, err
	}
	env.host = h
	for _, mode := range []string{ModeNoFilter, ModeFilter} {
		o := serve.Options{Listen: "127.0.0.1:0", Upstreams: []*url.URL{up}, Logger: Discard()}
		if mode == ModeFilter {
			o.Filter = h
		}
		srv, err := serve.New(o)
		if err != nil {
			env.close()
			return nil, err
		}
		env.done.Add(1)
		go func() { defer env.done.Done(); _ = srv.Serve(ctx) }()
		env.loads[mode] = &Load{URL: srv.URL() + "/genesys/cometd/connect", Clients: serveClients}
	}
	return env, nil
}

func (e *serveEnv) close() {
	e.cancel()
	for _, l := range e.loads {
		l.Close()
	}
	if e.upstream != nil {
		_ = e.upstream.Close()
	}
	e.done.Wait()
	if e.host != nil {
		_ = e.host.Close(context.Background())
	}
}

// checkPartitioned is the proof that the filter ran: every cookie of the upstream comes back CHIPS-ready.
func checkPartitioned(resp *http.Response) error {
	cookies := resp.Header.Values("Set-Cookie")
	if len(cookies) != len(ChatCookies) {
		return fmt.Errorf("bench: %d Set-Cookie, want %d", len(cookies), len(ChatCookies))
	}
	for _, c := range cookies {
		if !strings.HasSuffix(c, "; Partitioned") {
			return fmt.Errorf("bench: cookie not rewritten: %q", c)
		}
	}
	return nil
}

// BenchmarkServe is pair 4: wasmhost's reverse proxy without a filter and with the filter, in front of the same
// upstream, under the same load: serveClients keep-alive HTTP/1.1 clients on loopback sharing b.N requests. ns/op
// is wall time per request (the inverse of throughput); req/s, p50-us and p99-us are reported too.
func BenchmarkServe(b *testing.B) {
	env := startServe(b)
	for _, mode := range []string{ModeNoFilter, ModeFilter} {
		b.Run(mode, func(b *testing.B) {
			l := env.loads[mode]
			// One checked request proves what the mode measures, and warms the connections.
			check := checkPartitioned
			if mode == ModeNoFilter {
				check = func(r *http.Response) error {
					if err := checkPartitioned(r); err == nil {
						return fmt.Errorf("bench: cookies rewritten without the filter")
					}
					return nil
				}
			}
			l.Check = check
			if _, err := l.Run(context.Background(), l.Clients); err != nil {
				b.Fatal(err)
			}
			l.Check = nil
			b.ResetTimer()
			res, err := l.Run(context.Background(), b.N)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.Throughput(), "req/s")
			b.ReportMetric(float64(res.Percentile(0.50).Nanoseconds())/1e3, "p50-us")
			b.ReportMetric(float64(res.Percentile(0.99).Nanoseconds())/1e3, "p99-us")
			if b.N >= 1000 {
				latMu.Lock()
				for _, d := range res.Latencies {
					latencies[mode] = append(latencies[mode], d.Nanoseconds())
				}
				latMu.Unlock()
			}
		})
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		// A configuration line for benchstat and benchreport, like go test's own "cpu:" line.
		fmt.Printf("clients: %d\n", serveClients)
	}
	code := m.Run()
	if serveState != nil {
		serveState.close()
	}
	if procsState != nil {
		procsState.close()
	}
	if *latenciesOut != "" && len(latencies) > 0 {
		if err := mergeLatencies(repoPath(*latenciesOut), latencies); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// mergeLatencies adds this process's serve latencies to those already in path, so that `make bench`, which runs
// the benchmark binary several times, charts all of its runs.
func mergeLatencies(path string, add map[string][]int64) error {
	all := map[string][]int64{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &all); err != nil {
			return fmt.Errorf("bench: %s: %w", path, err)
		}
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("bench: %w", err)
	}
	for mode, l := range add {
		all[mode] = append(all[mode], l...)
	}
	b, err := json.Marshal(all)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
