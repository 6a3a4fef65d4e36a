package host

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

func TestPlatformByName(t *testing.T) {
	for _, name := range []string{"", "envoy"} {
		if p, err := PlatformByName(name); p != nil || err != nil {
			t.Errorf("PlatformByName(%q) = %v, %v; want plain Envoy", name, p, err)
		}
	}
	if p, err := PlatformByName("gcp-service-extensions"); err != nil || p != &GCPServiceExtensions {
		t.Errorf("PlatformByName(gcp-service-extensions) = %v, %v", p, err)
	}
	_, err := PlatformByName("gcp")
	if err == nil || !strings.Contains(err.Error(), `want one of envoy, gcp-service-extensions, got "gcp"`) {
		t.Errorf("unknown platform: %v", err)
	}
}

// A platform that names something that is not a host function is a typo, not a rule: refuse it.
func TestPlatformCheck(t *testing.T) {
	_, err := New(context.Background(), Options{Module: wat(t, "minimal"), Platform: &Platform{Name: "typo", Refused: []string{"proxy_define_metrics"}}})
	if err == nil || !strings.Contains(err.Error(), `platform typo: refuses "proxy_define_metrics", which is not a host function`) {
		t.Errorf("New: %v", err)
	}
	_, err = New(context.Background(), Options{Module: wat(t, "minimal"), Platform: &Platform{Name: "odd", MemoryLimitBytes: 1000}})
	if err == nil || !strings.Contains(err.Error(), "memory limit 1000 is not a whole number of 64 KiB pages") {
		t.Errorf("New: %v", err)
	}
}

// Every host function the platform refuses answers Unimplemented, whatever its arguments, through the adapter
// instantiateEnv registers; the others keep Envoy's behaviour.
func TestGCPRefusedHostcalls(t *testing.T) {
	e := newABIEnv(t)
	for _, f := range hostFunctions {
		stack := make([]uint64, max(len(f.params), 1))
		hostFunc{name: f.name, fn: GCPServiceExtensions.hostcall(f)}.goModuleFunc()(e.inst.ctx, e.inst.mod, stack)
		got := abi.Status(stack[0])
		refused := GCPServiceExtensions.refuses(f.name)
		if refused && got != abi.StatusUnimplemented {
			t.Errorf("%s answered %v, want Unimplemented", f.name, got)
		}
		if !refused && got == abi.StatusUnimplemented {
			t.Errorf("%s answered Unimplemented but the platform does not refuse it", f.name)
		}
	}
}

// A real guest that defines a metric at start, as the SDK does it (a failed definition panics), cannot start on
// the platform; the same guest starts on plain Envoy.
func TestGCPGuestDefiningMetricsFailsToStart(t *testing.T) {
	module := guest(t, "metrics")
	newHost(t, Options{Module: module})
	_, err := New(context.Background(), Options{Module: module, PoolSize: 1, CacheDir: testCacheDir, Platform: &GCPServiceExtensions})
	if err == nil || !strings.Contains(err.Error(), "proxy_on_configure") {
		t.Fatalf("New on gcp-service-extensions: %v; want the plugin's start to fail", err)
	}
}

func TestGCPProperties(t *testing.T) {
	h, _ := newHost(t, Options{Module: wat(t, "minimal"), Platform: &GCPServiceExtensions})
	s := newStream(t, h)
	defer s.Close()
	e := &abiEnv{t: t, h: h, s: s, inst: s.inst}
	defer func() { e.inst.phase, e.inst.effective, e.inst.effSt = phaseIdle, 0, nil }()
	e.inRequestHeaders(reqHeaders("/chat?x=1"))
	s.st.upstream = "10.0.0.9:8080"
	ret := e.slot(8)
	for path, want := range map[string]abi.Status{
		"request\x00path":     abi.StatusOK,
		"request\x00method":   abi.StatusOK,
		"request\x00headers":  abi.StatusNotFound, // not among the forwarded attributes
		"upstream\x00address": abi.StatusNotFound, // the balancer routes; the plugin never learns where
		"source\x00address":   abi.StatusNotFound,
		"plugin_name":         abi.StatusNotFound,
		"requestx\x00path":    abi.StatusNotFound,
	} {
		p, n := e.putStr(path)
		if got := e.call(hostGetProperty, p, n, ret, ret+4); got != want {
			t.Errorf("get_property(%q) = %v, want %v", strings.ReplaceAll(path, "\x00", "."), got, want)
		}
	}
}

// The memory of one VM stops at 16 MiB: the guest cannot grow past it.
func TestGCPMemoryLimit(t *testing.T) {
	h, _ := newHost(t, Options{Module: wat(t, "minimal"), Platform: &GCPServiceExtensions})
	s := newStream(t, h)
	defer s.Close()
	mem := s.inst.mem
	if max, ok := mem.Definition().Max(); ok && max > 256 {
		t.Errorf("declared maximum %d pages", max)
	}
	free := 256 - mem.Size()/wasmPageSize
	if _, ok := mem.Grow(free + 1); ok {
		t.Errorf("memory grew past 16 MiB")
	}
	if _, ok := mem.Grow(free); !ok {
		t.Errorf("memory could not grow to 16 MiB")
	}
}

// The CPU budget is enforced on HTTP callbacks: with a budget no callback can meet, the first request headers
// fail the plugin and the stream gets the platform's answer; start-up callbacks are not metered.
func TestPlatformCPUBudget(t *testing.T) {
	p := &Platform{Name: "stingy", CallbackCPU: time.Nanosecond, FailStatus: 500}
	h, _ := newHost(t, Options{Module: wat(t, "minimal"), Platform: p, FailurePolicy: FailReload})
	s := newStream(t, h)
	defer s.Close()
	v := s.OnRequestHeaders(reqHeaders("/"), true)
	if v.Err == nil || !strings.Contains(v.Err.Error(), "over platform stingy's budget of 1ns per callback") {
		t.Fatalf("Err = %v", v.Err)
	}
	if v.Local == nil || v.Local.Status != 500 {
		t.Errorf("Local = %+v, want the platform's 500", v.Local)
	}
	if st := h.Stats(); st.Traps != 1 {
		t.Errorf("Traps = %d", st.Traps)
	}
}

// 1,000 streams per VM: the host bounds open streams at that many per instance unless told otherwise.
func TestGCPStreamsPerInstance(t *testing.T) {
	h, _ := newHost(t, Options{Module: wat(t, "minimal"), Platform: &GCPServiceExtensions, PoolSize: 2})
	if h.opts.MaxStreams != 2000 || cap(h.streamSem) != 2000 {
		t.Errorf("MaxStreams = %d, semaphore %d; want 2000", h.opts.MaxStreams, cap(h.streamSem))
	}
	h2, _ := newHost(t, Options{Module: wat(t, "minimal"), Platform: &GCPServiceExtensions, MaxStreams: 5})
	if h2.opts.MaxStreams != 5 {
		t.Errorf("an explicit MaxStreams was overridden: %d", h2.opts.MaxStreams)
	}
}
