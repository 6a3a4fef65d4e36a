package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/cputime"
)

// BenchmarkStreamBetween asks whether the guest's stream costs more when other work runs between streams, as it
// does in wasmhost serve, where net/http reads, writes and parses around every stream: the same chat stream as
// BenchmarkFilterCost (after the same warm-up), with, between two streams, nothing, a walk over 1 or 8 MiB of
// memory (one write per cache line, which evicts the caches the guest's code and data were in), 100 µs of idle
// CPU, or a whole HTTP request through net/http over loopback (client and server in this process). stream-cpu-ns/op is the thread CPU time of the stream alone, read
// around each stream, so the work in between is not counted; the two clock reads per stream are in every variant.
func BenchmarkStreamBetween(b *testing.B) {
	req, resp := ChatRequest(), ChatResponse()
	guests := []struct {
		name string
		h    func(testing.TB) *host.Host
	}{
		{"readheaders", func(tb testing.TB) *host.Host { return NewHost(tb, GuestModule(tb, ReadHeadersGuest), 1) }},
		{"filter", func(tb testing.TB) *host.Host { return NewHost(tb, FilterModule(tb), 1) }},
	}
	for _, g := range guests {
		h := g.h(b)
		for range warmUp {
			if _, err := RunStream(context.Background(), h, req, resp); err != nil {
				b.Fatal(err)
			}
		}
		for _, between := range []struct {
			name string
			work func(testing.TB) func()
		}{
			{"nothing", func(testing.TB) func() { return func() {} }},
			{"touch-1MiB", touchMemory(1 << 20)},
			{"touch-8MiB", touchMemory(8 << 20)},
			{"idle-100us", idle(100 * time.Microsecond)},
			{"http-request", httpRoundTrip},
		} {
			b.Run("guest="+g.name+"/between="+between.name, func(b *testing.B) {
				work := between.work(b)
				streamBetween(b, h, req, resp, work)
			})
		}
	}
}

func streamBetween(b *testing.B, h *host.Host, req, resp [][2]string, work func()) {
	ctx := context.Background()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var inStream time.Duration
	n := 0
	for b.Loop() {
		work()
		start, _ := cputime.Thread()
		if _, err := RunStream(ctx, h, req, resp); err != nil {
			b.Fatal(err)
		}
		end, ok := cputime.Thread()
		if !ok {
			b.Skip("no thread CPU clock here")
		}
		inStream += end - start
		n++
	}
	b.ReportMetric(float64(inStream.Nanoseconds())/float64(n), "stream-cpu-ns/op")
}

// idle leaves the thread's CPU idle for d (the work in between is waiting, as a proxy waits for its upstream):
// in a virtual machine an idle virtual CPU lets the host run other work on the core.
func idle(d time.Duration) func(testing.TB) func() {
	return func(testing.TB) func() {
		return func() { <-time.After(d) }
	}
}

// touchMemory writes one byte in every 64-byte line of a buffer of the given size.
func touchMemory(size int) func(testing.TB) func() {
	return func(testing.TB) func() {
		buf := make([]byte, size)
		return func() {
			for i := 0; i < len(buf); i += 64 {
				buf[i]++
			}
		}
	}
}

// httpRoundTrip makes one GET with a keep-alive client to a loopback server in this process that answers with the
// chat response's headers and body.
func httpRoundTrip(tb testing.TB) func() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: ChatUpstream(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	url := "http://" + ln.Addr().String() + "/genesys/cometd/connect"
	return func() {
		r, err := client.Get(url)
		if err != nil {
			tb.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
}
