package envoygate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// run is one interleaved run through the host library: workers goroutines (one per instance) each keep window
// streams open at once on their instance's worth of the pool, starting a new stream (request headers) and finishing
// the oldest (upstream address, response headers, Close) in turn, so that every instance carries many live
// contexts while the filter allocates. stopAtFailure ends the run at the first guest failure.
type run struct {
	module        []byte
	config        string // a file under testdata/config
	envoy         string // the host's Envoy profile; "" is the default, the strictest
	streams       int
	instances     int
	window        int
	stopAtFailure bool
}

// outcome is what a run counted.
type outcome struct {
	streams      int
	failures     int    // callbacks that reported a plugin failure (Verdict.Err)
	answered503  int    // local responses of status 503
	firstFailure string // the first failure's error, for the report
	traps        uint64 // Stats.Traps
	warm         int    // streams in the warm-up
	memWarm      int64  // guest memory after the warm-up
	memEnd       int64  // guest memory at the end
}

var chatRequest = [][2]string{
	{":authority", "chat.example.com"}, {":path", "/genesys/cometd/connect"}, {":method", "POST"}, {":scheme", "https"},
	{"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	{"accept", "application/json"}, {"cookie", "BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv"},
}

var chatResponse = [][2]string{
	{":status", "200"}, {"content-type", "application/json;charset=utf-8"},
	{"set-cookie", "BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; Path=/; HttpOnly"},
	{"set-cookie", "JSESSIONID=node01ab2cd3ef4gh5ij6kl7mn8op9.node0; Path=/genesys; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly"},
	{"x-chat-node", "gms-2"},
}

func (r run) do(t *testing.T) outcome {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(testwasm.RepoRoot(), "testdata", "config", r.config))
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(context.Background(), host.Options{
		Module: r.module, PluginConfig: cfg, Envoy: r.envoy, PoolSize: r.instances,
		CacheDir: testwasm.CacheDir(), Logger: slog.New(slog.DiscardHandler), FailurePolicy: host.FailReload,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())

	var (
		mu      sync.Mutex
		out     outcome
		stopped bool
	)
	record := func(v host.Verdict) {
		if v.Err == nil && v.Local == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if v.Err != nil {
			out.failures++
			if out.firstFailure == "" {
				out.firstFailure = v.Err.Error()
			}
			if r.stopAtFailure {
				stopped = true
			}
		}
		if v.Local != nil && v.Local.Status == 503 {
			out.answered503++
		}
	}
	halt := func() bool { mu.Lock(); defer mu.Unlock(); return stopped }
	phase := func(n int) {
		var wg sync.WaitGroup
		per := n / r.instances
		for w := range r.instances {
			wg.Add(1)
			go func() {
				defer wg.Done()
				open := make([]*host.Stream, 0, r.window)
				finish := func(s *host.Stream) {
					s.SetUpstreamAddress("10.0.0.2:8080")
					resp := append([][2]string(nil), chatResponse...)
					record(s.OnResponseHeaders(resp, false))
					s.Close()
				}
				for i := range per {
					if i%1000 == 0 && halt() {
						break
					}
					s, err := h.NewStream(context.Background(), host.StreamInfo{
						SourceAddress: fmt.Sprintf("192.0.2.%d:%d", w+1, 1024+i%60000), Protocol: "HTTP/1.1", TLS: true,
					})
					if err != nil {
						t.Error(err)
						return
					}
					record(s.OnRequestHeaders(append([][2]string(nil), chatRequest...), true))
					open = append(open, s)
					if len(open) == r.window {
						finish(open[0])
						open = append(open[:0], open[1:]...)
					}
				}
				for _, s := range open {
					finish(s)
				}
			}()
		}
		wg.Wait()
	}
	warm := min(warmUpPerInstance*r.instances, r.streams/2)
	phase(warm)
	out.warm = warm
	out.memWarm = h.Stats().GuestMemoryBytes
	if !halt() {
		phase(r.streams - warm)
	}
	st := h.Stats()
	out.streams, out.traps, out.memEnd = int(st.Streams), st.Traps, st.GuestMemoryBytes
	return out
}

// warmUpPerInstance is how many streams an instance of the filter takes before its heap stops growing (about
// 30,000 at the time of writing; see bench's soak).
const warmUpPerInstance = 40_000

func (o outcome) String() string {
	s := fmt.Sprintf("%d streams: %d guest failures (%d traps), %d answers of 503, guest memory %d B after warm-up, %d B at end",
		o.streams, o.failures, o.traps, o.answered503, o.memWarm, o.memEnd)
	if o.firstFailure != "" {
		first := o.firstFailure
		s += "; first failure: " + first
	}
	return s
}
