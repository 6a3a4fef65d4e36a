package bench

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/cookie"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/cputime"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// Each pair is one benchmark with two sub-benchmarks that run back to back. go test's -count repeats each
// sub-benchmark in a row, so `make bench` runs the whole binary several times instead: the two sides then
// alternate (A, B, A, B, ...) and a burst of noise on this shared machine hits both rather than one.

// warmUp streams run before the clock starts: a Go guest's heap, and with it its linear memory, grows to its working
// size over the first thirty to forty-five thousand streams (TestSoak checks the growth after 50,000), and each
// growth copies the whole memory; these benchmarks measure the steady state.
const warmUp = 50000

// BenchmarkPerStream is pair 1: one chat stream (request headers, response headers with three Set-Cookie, end of
// stream) through the SDK's own wazero runner and through this repository's host, on the same filter.wasm.
func BenchmarkPerStream(b *testing.B) {
	module := FilterModule(b)
	req, resp := ChatRequest(), ChatResponse()
	b.Run("impl=proxytest", func(b *testing.B) {
		// A fresh runner for every run: the runner never calls proxy_on_delete, so the guest keeps every stream's
		// context and slows down as they pile up; sharing one across runs would make later runs slower than earlier
		// ones. Its compilation happens before the clock starts.
		vm, err := proxytest.NewWasmVMContext(module)
		if err != nil {
			b.Fatal(err)
		}
		defer vm.Close()
		// The emulator prints the plugin's log lines with package log; they would land in the middle of the
		// benchmark's result line and break its format.
		defer log.SetOutput(log.Writer())
		log.SetOutput(io.Discard)
		emu, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(vm))
		defer reset()
		if st := emu.StartPlugin(); st != types.OnPluginStartStatusOK {
			b.Fatalf("proxytest: plugin start: %v", st)
		}
		stream := func() {
			id := emu.InitializeHttpContext()
			emu.CallOnRequestHeaders(id, req, true)
			emu.CallOnResponseHeaders(id, resp, false)
			emu.CompleteHttpContext(id)
		}
		for range warmUp {
			stream()
		}
		// The runner must do the filter's work too, or the pair compares unequal things.
		id := emu.InitializeHttpContext()
		emu.CallOnRequestHeaders(id, req, true)
		emu.CallOnResponseHeaders(id, resp, false)
		if got := fmt.Sprint(emu.GetCurrentResponseHeaders(id)); strings.Count(got, "Partitioned") != len(ChatCookies) {
			b.Fatalf("proxytest: cookies not rewritten: %s", got)
		}
		emu.CompleteHttpContext(id)
		loop(b, stream)
	})
	b.Run("impl=wasmhost", func(b *testing.B) {
		benchHost(b, NewHost(b, module, 1), req, resp)
	})
}

// BenchmarkFilterCost is pair 2: the same stream through the host with the no-op guest that only reads the
// response headers, and with the filter.
func BenchmarkFilterCost(b *testing.B) {
	req, resp := ChatRequest(), ChatResponse()
	b.Run("guest=wat-noop", func(b *testing.B) {
		benchHost(b, NewHost(b, watModule(b, "minimal"), 1), req, resp)
	})
	b.Run("guest=readheaders", func(b *testing.B) {
		benchHost(b, NewHost(b, GuestModule(b, ReadHeadersGuest), 1), req, resp)
	})
	b.Run("guest=filter", func(b *testing.B) {
		benchHost(b, NewHost(b, FilterModule(b), 1), req, resp)
	})
	b.Run("guest=filter-affinity", func(b *testing.B) {
		h, affReq := affinityHost(b)
		benchHost(b, h, affReq, resp)
	})
}

// affinityHost starts the filter with the affinity configuration and returns it with AffinityRequest.
func affinityHost(tb testing.TB) (*host.Host, [][2]string) {
	tb.Helper()
	cfg, data := AffinityConfig(tb)
	req, err := AffinityRequest(cfg, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return newHostCtx(tb, context.Background(), FilterModule(tb), 1, data), req
}

// AffinityConfig reads and parses AffinityConfigPath.
func AffinityConfig(tb testing.TB) (*config.Config, []byte) {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(testwasm.RepoRoot(), AffinityConfigPath))
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Parse(data, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg, data
}

func benchHost(b *testing.B, h *host.Host, req, resp [][2]string) {
	ctx := context.Background()
	stream := func() {
		if _, err := RunStream(ctx, h, req, resp); err != nil {
			b.Fatal(err)
		}
	}
	for range warmUp {
		stream()
	}
	loop(b, stream)
}

// loop runs op under b.Loop with allocations reported and, on Linux, the CPU time of the benchmark's thread per
// operation as cpu-ns/op: wall time on a shared machine also counts the time other processes held the CPU. The
// goroutine stays on its thread so that the thread's clock is the operation's; the guest runs on the calling
// thread too.
func loop(b *testing.B, op func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	start, ok := cputime.Thread()
	n := 0
	for b.Loop() {
		op()
		n++
	}
	if end, ok2 := cputime.Thread(); ok && ok2 && n > 0 {
		b.ReportMetric(float64(end-start)/float64(n), "cpu-ns/op")
	}
}

var sink string

// BenchmarkRewrite is the floor: the native rewriter alone on the three cookies of the chat response, all of which
// need rewriting, and on the same cookies once rewritten (compliant: nothing to do, nothing allocated).
func BenchmarkRewrite(b *testing.B) {
	p := cookie.DefaultPolicy()
	b.Run("cookies=rewritten", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range ChatCookies {
				sink, _ = cookie.Rewrite(c, p)
			}
		}
	})
	b.Run("cookies=compliant", func(b *testing.B) {
		var done [len(ChatCookies)]string
		for i, c := range ChatCookies {
			done[i], _ = cookie.Rewrite(c, p)
		}
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range done {
				sink, _ = cookie.Rewrite(c, p)
			}
		}
	})
}

// BenchmarkStartup is pair 5: host.New (compile, check, first instance) and Close, without a compilation cache
// and with a warm one, as a restarted process would find it.
func BenchmarkStartup(b *testing.B) {
	module := FilterModule(b)
	start := func(b *testing.B, cacheDir string) {
		h, err := host.New(context.Background(), host.Options{Module: module, PoolSize: 1, CacheDir: cacheDir, Logger: Discard()})
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("cache=none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			start(b, "")
		}
	})
	b.Run("cache=warm", func(b *testing.B) {
		dir := filepath.Join(b.TempDir(), "cache")
		start(b, dir) // fills the cache
		b.ReportAllocs()
		for b.Loop() {
			start(b, dir)
		}
	})
}

// envInt reads a positive integer from the environment, or returns def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func watModule(tb testing.TB, name string) []byte {
	tb.Helper()
	return readModule(tb, filepath.Join(testwasm.RepoRoot(), "testdata", "wat", name+".wasm"))
}

// TestChatStreamRewritten checks what the benchmarks measure: through the host, the filter turns the chat response's
// three cookies into CHIPS-ready ones and keeps every other header.
func TestChatStreamRewritten(t *testing.T) {
	h := NewHost(t, FilterModule(t), 1)
	out, err := RunStream(context.Background(), h, ChatRequest(), ChatResponse())
	if err != nil {
		t.Fatal(err)
	}
	var cookies []string
	for _, kv := range out {
		if kv[0] == "set-cookie" {
			cookies = append(cookies, kv[1])
		}
	}
	if len(out) != len(ChatResponse()) || len(cookies) != len(ChatCookies) {
		t.Fatalf("response headers %q: want %d headers, %d set-cookie", out, len(ChatResponse()), len(ChatCookies))
	}
	for i, c := range cookies {
		if !strings.HasPrefix(c, ChatCookies[i][:strings.IndexByte(ChatCookies[i], ';')]) || !strings.Contains(c, "SameSite=None") ||
			!strings.HasSuffix(c, "; Partitioned") || !strings.Contains(c, "Secure") {
			t.Errorf("cookie %d = %q, want %q made CHIPS-ready", i, c, ChatCookies[i])
		}
	}
}

// TestAffinityStreamRefreshed checks what the affinity row measures: the request's token is honoured (the routing
// header names the pinned upstream, the cookie is hidden from it) and the response refreshes it.
func TestAffinityStreamRefreshed(t *testing.T) {
	cfg, _ := AffinityConfig(t)
	h, req := affinityHost(t)
	s, err := h.NewStream(context.Background(), hostStreamInfo)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := s.OnRequestHeaders(req, true); v.Err != nil || v.Local != nil {
		t.Fatalf("request headers: %+v", v)
	}
	a := &cfg.Affinity
	var route string
	for _, kv := range s.RequestHeaders() {
		switch {
		case kv[0] == a.RoutingHeader:
			route = kv[1]
		case kv[0] == "cookie" && strings.Contains(kv[1], a.CookieName):
			t.Errorf("the affinity cookie reached the upstream: %q", kv[1])
		}
	}
	if got, err := affinity.DecodeRoutingValue(route); err != nil || got != ChatUpstreamAddress {
		t.Fatalf("routing header %q = %q, %v; want %s", a.RoutingHeader, got, err, ChatUpstreamAddress)
	}
	s.SetUpstreamAddress(ChatUpstreamAddress)
	if v := s.OnResponseHeaders(ChatResponse(), false); v.Err != nil || v.Local != nil {
		t.Fatalf("response headers: %+v", v)
	}
	refreshed := 0
	for _, kv := range s.ResponseHeaders() {
		if kv[0] != "set-cookie" || !strings.HasPrefix(kv[1], a.CookieName+"=") {
			continue
		}
		value, _, _ := strings.Cut(strings.TrimPrefix(kv[1], a.CookieName+"="), ";")
		tok, err := a.Sealer.Open(value, a.CookieName)
		if err != nil || tok.Upstream != ChatUpstreamAddress || time.Since(tok.LastSeen) > time.Minute {
			t.Errorf("refreshed token %+v, %v: want %s seen now", tok, err, ChatUpstreamAddress)
		}
		refreshed++
	}
	if refreshed != 1 {
		t.Fatalf("response headers %q: want one refreshed affinity cookie", s.ResponseHeaders())
	}
}
