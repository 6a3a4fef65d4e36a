package bench

import (
	"context"
	"encoding/json"
	"flag"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
	"os"
	"runtime"
	"testing"
	"time"
)

var soakOut = flag.String("soak.out", "", "write the soak test's measurements to this JSON file (relative to the repository root)")

// TestSoak runs many chat streams through one instance of the filter (PoolSize 1) and checks that the guest's
// linear memory grows after the warm-up by no more than a per-stream leak would make it (testwasm.CheckGuestMemoryFlat:
// the runtime may still take one more allocator step) and that the host's heap stays flat. CHIPS_SOAK=1 runs the full
// 1,000,000 streams (about a minute here; `make bench` does); otherwise, and always with -short, a quick 90,000 with
// the same 50,000-stream warm-up: the guest's heap takes 30,000 to 45,000 streams to settle (the fewer bytes a
// stream allocates, the later the collector reaches its working size).
func TestSoak(t *testing.T) {
	streams, warm := 90_000, 50_000
	if os.Getenv("CHIPS_SOAK") == "1" && !testing.Short() {
		streams, warm = 1_000_000, 50_000
	}
	var probe MemoryProbe
	h := newHostCtx(t, probe.Context(context.Background()), FilterModule(t), 1, nil)
	req, resp := ChatRequest(), ChatResponse()
	ctx := context.Background()
	guestMem := func() uint64 {
		sizes := probe.Sizes()
		if len(sizes) != 1 {
			t.Fatalf("bench: want exactly one guest memory, the probe saw %d", len(sizes))
		}
		return sizes[0]
	}
	hostHeap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	run := func(n int) {
		for range n {
			out, err := RunStream(ctx, h, req, resp)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(resp) {
				t.Fatalf("bench: response has %d headers, want %d", len(out), len(resp))
			}
		}
	}
	run(warm)
	profile, err := host.EnvoyProfileFor(host.DefaultEnvoy)
	if err != nil {
		t.Fatal(err)
	}
	res := SoakResult{Envoy: profile.String(), Streams: streams, WarmUp: warm, GuestMemWarm: guestMem(), HostHeapWarm: hostHeap()}
	res.GuestMemMax = res.GuestMemWarm
	const checkpoints = 20
	res.CheckpointEvery = (streams - warm) / checkpoints
	start := time.Now()
	for range checkpoints {
		run(res.CheckpointEvery)
		m := guestMem()
		res.GuestMemMax = max(res.GuestMemMax, m)
		res.GuestMemSamples = append(res.GuestMemSamples, int64(m))
	}
	elapsed := time.Since(start)
	res.NsPerStream = float64(elapsed.Nanoseconds()) / float64(checkpoints*res.CheckpointEvery)
	res.Seconds = elapsed.Seconds()
	res.GuestMemEnd = guestMem()
	res.HostHeapEnd = hostHeap()
	res.GuestFailures = h.Stats().Traps
	if res.GuestFailures != 0 {
		t.Errorf("%d guest failures under %s", res.GuestFailures, res.Envoy)
	}
	for _, m := range h.Metrics() {
		if m.Name == "chips.cookies_rewritten" {
			res.Rewritten = m.Value
		}
	}
	t.Logf("soak: %d streams (%d warm-up): guest memory %d B after warm-up, %d B at end (max %d); host heap %d B -> %d B; %.0f ns/stream",
		streams, warm, res.GuestMemWarm, res.GuestMemEnd, res.GuestMemMax, res.HostHeapWarm, res.HostHeapEnd, res.NsPerStream)
	if want := int64(3 * streams); res.Rewritten != want {
		t.Errorf("chips.cookies_rewritten = %d, want %d: the streams did not do the filter's work", res.Rewritten, want)
	}
	if err := testwasm.CheckGuestMemoryFlat(int64(res.GuestMemWarm), int64(res.GuestMemMax), streams-warm); err != nil {
		t.Errorf("%v (samples %v)", err, res.GuestMemSamples)
	}
	// The host keeps nothing per stream; allow the noise of a few pooled buffers.
	if res.HostHeapEnd > res.HostHeapWarm+1<<20 {
		t.Errorf("host heap grew from %d B to %d B", res.HostHeapWarm, res.HostHeapEnd)
	}
	if *soakOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(repoPath(*soakOut), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
