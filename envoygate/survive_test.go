package envoygate

import (
	"os"
	"strings"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// TestFilterSurvivesEnvoy133 is the filter as `make build` makes it, under Envoy 1.33's WASI (the host's default
// profile), streams interleaved (64 open at once on each of two instances) and the garbage collector busy: the way
// Envoy 1.33 to 1.37 kill an unmodified Go module (poll_oneoff answers ENOSYS, or traps inside the allocator). With
// the runtime fix of internal/wasmbuild it survives: 200,000 streams per configuration, no guest failure, no 503,
// guest memory flat after the warm-up (40,000 streams per instance): no more growth than a leak of 16 bytes per
// stream would cause (testwasm.CheckGuestMemoryFlat).
func TestFilterSurvivesEnvoy133(t *testing.T) {
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, config := range []string{"default.json", "affinity.json"} {
		t.Run(config, func(t *testing.T) {
			o := run{module: module, config: config, streams: 200_000, instances: 2, window: 64}.do(t)
			t.Log(o)
			if o.streams != 200_000 || o.failures != 0 || o.traps != 0 || o.answered503 != 0 {
				t.Fatalf("the filter failed under Envoy 1.33's WASI: %v", o)
			}
			if err := testwasm.CheckGuestMemoryFlat(o.memWarm, o.memEnd, o.streams-o.warm); err != nil {
				t.Errorf("%v: %v", err, o)
			}
		})
	}
}

// TestUnfixedFilterDiesUnderEnvoy133 is the same run with the filter built as a plain `go build` would: it dies
// in netpoll or on poll_oneoff, as it would in Envoy 1.33 to 1.37. It proves that the run above can fail.
func TestUnfixedFilterDiesUnderEnvoy133(t *testing.T) {
	module, err := os.ReadFile(testwasm.FilterWithoutRuntimeFix(t))
	if err != nil {
		t.Fatal(err)
	}
	o := run{module: module, config: "affinity.json", streams: 200_000, instances: 2, window: 64, stopAtFailure: true}.do(t)
	t.Log(o)
	if o.failures == 0 || !(strings.Contains(o.firstFailure, "runtime.netpoll") || strings.Contains(o.firstFailure, "poll_oneoff")) {
		t.Fatalf("expected the unfixed module to die in netpoll or on poll_oneoff: %v", o)
	}
}

// The unfixed filter is safe under cpp-host 94091cd, whose poll_oneoff reports no events and may run inside the
// allocator: the hazard is Envoy 1.33 to 1.37's alone.
func TestUnfixedFilterSurvives94091cd(t *testing.T) {
	module, err := os.ReadFile(testwasm.FilterWithoutRuntimeFix(t))
	if err != nil {
		t.Fatal(err)
	}
	o := run{module: module, config: "affinity.json", envoy: "94091cd", streams: 50_000, instances: 2, window: 64, stopAtFailure: true}.do(t)
	t.Log(o)
	if o.failures != 0 || o.traps != 0 {
		t.Fatalf("the unfixed filter failed under cpp-host 94091cd: %v", o)
	}
}
