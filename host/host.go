package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

var cryptoRand = rand.Reader

// maxMemoryPages caps guest memory at 1 GiB, proxy-wasm-cpp-host's PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES.
const maxMemoryPages = 1 << 30 / 65536

// ErrClosed is returned by NewStream once Close has been called.
var ErrClosed = errors.New("wasmhost: host closed")

// Host runs one Proxy-Wasm plugin: the module compiled once, a bounded pool of instances, and what the instances
// share (metrics, shared data, shared queues). It is safe for concurrent use; each Stream it hands out belongs to one
// goroutine.
type Host struct {
	opts         Options
	info         ModuleInfo
	runtime      wazero.Runtime
	compiled     wazero.CompiledModule
	moduleConfig wazero.ModuleConfig
	guestLog     *slog.Logger

	metrics *metricRegistry
	shared  sharedData
	queues  sharedQueues

	// slots bounds the instances in existence: whoever holds a slot holds (or is creating) one instance. idle
	// holds the instances nobody uses.
	slots     chan struct{}
	idle      chan *instance
	done      chan struct{}
	closeOnce sync.Once
	serial    atomic.Uint64

	stats struct {
		streams, traps, failOpen, failClosed, reloads, localReplies atomic.Uint64
		active, instances                                           atomic.Int64
	}
}

// Stats are the host's own counters.
type Stats struct {
	Streams        uint64 // streams started
	Active         int64  // streams started and not yet closed
	Traps          uint64 // plugin failures: traps, panics and exits in any callback
	FailOpen       uint64 // streams let through unchanged after a failure (FailOpen)
	FailClosed     uint64 // streams answered 503 after a failure (FailClosed, FailReload)
	Reloads        uint64 // instances discarded after a failure and replaced by a fresh one
	Instances      int64  // instances alive now
	LocalResponses uint64 // local responses the plugin sent (proxy_send_local_response)
}

// New compiles the module, checks it the way Envoy would load it, and creates the first instance (running
// _initialize, proxy_on_vm_start and proxy_on_configure), so that a bad module or a configuration the plugin
// rejects fails here rather than on the first request.
func New(ctx context.Context, o Options) (*Host, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	info, err := Inspect(o.Module)
	if err != nil {
		return nil, err
	}
	if err := checkExports(info); err != nil {
		return nil, err
	}
	if missing := CheckCompatibility(info, o.AllowedImports); len(missing) > 0 {
		msg := "wasmhost: Failed to load Wasm module due to a missing import: " + missing[0]
		if len(missing) > 1 {
			msg += fmt.Sprintf(" (and %d more: %s)", len(missing)-1, strings.Join(missing[1:], ", "))
		}
		return nil, errors.New(msg)
	}
	h := &Host{
		opts:     o,
		info:     info,
		metrics:  newMetricRegistry(),
		slots:    make(chan struct{}, o.PoolSize),
		idle:     make(chan *instance, o.PoolSize),
		done:     make(chan struct{}),
		guestLog: o.Logger.With("component", "wasm", "plugin", o.PluginName),
	}
	rc := wazero.NewRuntimeConfig().WithMemoryLimitPages(maxMemoryPages)
	if o.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(o.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache %s: %w", o.CacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	h.runtime = wazero.NewRuntimeWithConfig(ctx, rc)
	fail := func(err error) (*Host, error) {
		_ = h.runtime.Close(context.Background())
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.runtime); err != nil {
		return fail(fmt.Errorf("wasmhost: WASI: %w", err))
	}
	if err := instantiateEnv(ctx, h.runtime); err != nil {
		return fail(err)
	}
	if err := h.checkImportTypes(); err != nil {
		return fail(err)
	}
	h.compiled, err = h.runtime.CompileModule(ctx, o.Module)
	if err != nil {
		return fail(fmt.Errorf("wasmhost: compiling the module: %w", err))
	}
	h.moduleConfig = newModuleConfig(o, time.Now())
	h.slots <- struct{}{}
	inst, err := h.newInstance(ctx)
	if err != nil {
		return fail(err)
	}
	h.release(inst)
	return h, nil
}

// requiredExports are the exports this host needs from an HTTP filter, with the signatures proxy-wasm-cpp-host
// checks for ABI 0.2.x. Envoy treats missing callbacks as no-ops; this host is stricter so that a module that is
// not an HTTP filter is refused at start.
var requiredExports = []struct {
	name string
	sig  Signature
}{
	{"proxy_on_context_create", sig([]ValueType{I32, I32})},
	{"proxy_on_vm_start", sig([]ValueType{I32, I32}, I32)},
	{"proxy_on_configure", sig([]ValueType{I32, I32}, I32)},
	{"proxy_on_request_headers", sig([]ValueType{I32, I32, I32}, I32)},
	{"proxy_on_response_headers", sig([]ValueType{I32, I32, I32}, I32)},
	{"proxy_on_log", sig([]ValueType{I32})},
	{"proxy_on_done", sig([]ValueType{I32}, I32)},
	{"proxy_on_delete", sig([]ValueType{I32})},
}

// optionalExports are checked when present, as proxy-wasm-cpp-host does for every callback it looks up.
var optionalExports = map[string]Signature{
	"_initialize":                 sig(nil),
	"_start":                      sig(nil),
	"main":                        sig([]ValueType{I32, I32}, I32),
	"__main_void":                 sig(nil, I32),
	"malloc":                      sig([]ValueType{I32}, I32),
	"proxy_on_memory_allocate":    sig([]ValueType{I32}, I32),
	"proxy_on_request_body":       sig([]ValueType{I32, I32, I32}, I32),
	"proxy_on_response_body":      sig([]ValueType{I32, I32, I32}, I32),
	"proxy_on_request_trailers":   sig([]ValueType{I32, I32}, I32),
	"proxy_on_response_trailers":  sig([]ValueType{I32, I32}, I32),
	"proxy_on_tick":               sig([]ValueType{I32}),
	"proxy_on_queue_ready":        sig([]ValueType{I32, I32}),
	"proxy_on_http_call_response": sig([]ValueType{I32, I32, I32, I32, I32}),
}

// checkExports applies proxy-wasm-cpp-host's load-time checks, in its wording: a known ABI version, an allocator,
// and the expected signature for every callback.
func checkExports(info ModuleInfo) error {
	switch abi.Version(info.ABIVersion) {
	case abi.Version020, abi.Version021:
	case "":
		return errors.New("wasmhost: Missing or unknown Proxy-Wasm ABI version")
	default:
		return fmt.Errorf("wasmhost: Proxy-Wasm ABI version %s is not supported (want 0.2.0 or 0.2.1)", info.ABIVersion)
	}
	if e, ok := info.Export("memory"); !ok || e.Kind != ExternMemory {
		return errors.New("wasmhost: Wasm module is missing its memory export (\"memory\")")
	}
	_, hasMalloc := info.Export("malloc")
	_, hasAlloc := info.Export("proxy_on_memory_allocate")
	if !hasMalloc && !hasAlloc {
		return errors.New("wasmhost: Wasm module is missing malloc function.")
	}
	check := func(name string, want Signature) error {
		e, ok := info.Export(name)
		if !ok {
			return nil
		}
		if e.Kind != ExternFunc || !e.Type.equal(want) {
			got := string(e.Kind)
			if e.Kind == ExternFunc {
				got = e.Type.String()
			}
			return fmt.Errorf("wasmhost: Bad function signature for: %s, want: %s, but the module exports: %s", name, want, got)
		}
		return nil
	}
	for _, r := range requiredExports {
		if _, ok := info.Export(r.name); !ok {
			return fmt.Errorf("wasmhost: Wasm module is missing the HTTP filter callback %s", r.name)
		}
		if err := check(r.name, r.sig); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(optionalExports) {
		if err := check(name, optionalExports[name]); err != nil {
			return err
		}
	}
	return nil
}

// checkImportTypes compares the signature of every function import with what the host module exports, so that a
// mismatch is reported in Envoy's words rather than wazero's.
func (h *Host) checkImportTypes() error {
	for _, imp := range h.info.Imports {
		if imp.Kind != ExternFunc {
			if imp.Kind == ExternMemory || imp.Kind == ExternTable {
				return fmt.Errorf("wasmhost: the module imports %s %s; this host provides none (export it from the module instead)", imp.Kind, imp)
			}
			continue
		}
		mod := h.runtime.Module(imp.Module)
		if mod == nil {
			continue // refused earlier by CheckCompatibility unless the allowed list was widened
		}
		def, ok := mod.ExportedFunctionDefinitions()[imp.Name]
		if !ok {
			return fmt.Errorf("wasmhost: Failed to load Wasm module due to a missing import: %s (this host does not implement it)", imp)
		}
		host := Signature{Params: valueTypes(def.ParamTypes()), Results: valueTypes(def.ResultTypes())}
		if !host.equal(imp.Type) {
			return fmt.Errorf("wasmhost: Failed to load Wasm module due to an import type mismatch: %s, want: %s, but host exports: %s", imp, imp.Type, host)
		}
	}
	return nil
}

func valueTypes(ts []api.ValueType) []ValueType {
	out := make([]ValueType, len(ts))
	for i, t := range ts {
		out[i] = ValueType(t)
	}
	return out
}

// Info returns what Inspect read from the module.
func (h *Host) Info() ModuleInfo { return h.info }

// NewStream takes an instance for one HTTP stream, waiting while all PoolSize instances are busy (ctx ends the
// wait). The stream holds the instance until Close. The plugin's context for the stream is created at the first
// callback, as Envoy does in decodeHeaders.
func (h *Host) NewStream(ctx context.Context, info StreamInfo) (*Stream, error) {
	select {
	case <-h.done:
		return nil, ErrClosed
	default:
	}
	// The common case, a free slot, takes the single-channel fast path; only a full pool pays for the select.
	select {
	case h.slots <- struct{}{}:
	default:
		select {
		case h.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("wasmhost: waiting for a free instance: %w", ctx.Err())
		case <-h.done:
			return nil, ErrClosed
		}
	}
	var inst *instance
	select {
	case inst = <-h.idle:
	default:
		var err error
		if inst, err = h.newInstance(ctx); err != nil {
			<-h.slots
			return nil, err
		}
	}
	inst.gen++
	inst.st.begin(inst, info, h.opts.Now())
	h.stats.streams.Add(1)
	h.stats.active.Add(1)
	return &Stream{h: h, inst: inst, st: &inst.st, gen: inst.gen}, nil
}

// release hands a healthy instance back to the pool.
func (h *Host) release(inst *instance) {
	h.idle <- inst
	<-h.slots
}

// failed discards an instance whose plugin failed and starts a replacement in the background, keeping the pool at
// its size. The slot of the failed instance passes to the replacement, so the pool never exceeds PoolSize.
func (h *Host) failed(inst *instance, err error) {
	h.stats.traps.Add(1)
	h.stats.reloads.Add(1)
	h.stats.instances.Add(-1)
	inst.logger().Error("wasmhost: plugin failed; its instance is discarded and replaced",
		"error", err, "policy", h.opts.FailurePolicy.String(), "instance", inst.serial)
	inst.close()
	go func() {
		defer func() { <-h.slots }()
		select {
		case <-h.done:
			return
		default:
		}
		fresh, err := h.newInstance(context.Background())
		if err != nil {
			h.guestLog.Error("wasmhost: replacing a failed instance failed; the next stream will try again", "error", err)
			return
		}
		h.idle <- fresh
	}()
}

// Close waits for open streams to close, ends each instance's root context (proxy_on_done, proxy_on_delete) and
// releases the runtime. If ctx ends first it returns ctx's error and leaves the instances in use alone. NewStream
// fails with ErrClosed from the moment Close is called.
func (h *Host) Close(ctx context.Context) error {
	h.closeOnce.Do(func() { close(h.done) })
	for i := 0; i < cap(h.slots); i++ {
		select {
		case h.slots <- struct{}{}:
		case <-ctx.Done():
			for ; i > 0; i-- {
				<-h.slots
			}
			return fmt.Errorf("wasmhost: closing: %w", ctx.Err())
		}
	}
	for {
		select {
		case inst := <-h.idle:
			inst.shutdown()
			inst.close()
			h.stats.instances.Add(-1)
			continue
		default:
		}
		break
	}
	return h.runtime.Close(ctx)
}

// Stats returns the host's counters.
func (h *Host) Stats() Stats {
	return Stats{
		Streams:        h.stats.streams.Load(),
		Active:         h.stats.active.Load(),
		Traps:          h.stats.traps.Load(),
		FailOpen:       h.stats.failOpen.Load(),
		FailClosed:     h.stats.failClosed.Load(),
		Reloads:        h.stats.reloads.Load(),
		Instances:      h.stats.instances.Load(),
		LocalResponses: h.stats.localReplies.Load(),
	}
}

// Metrics returns the plugin's metrics, sorted by name. They are shared by all instances, like Envoy's stats.
func (h *Host) Metrics() []Metric { return h.metrics.snapshot() }

// lineWriter turns the guest's stdout or stderr into log records, one per line, as Envoy logs fd_write output
// (stdout at info, stderr at error).
type lineWriter struct {
	mu     sync.Mutex
	log    *slog.Logger
	level  slog.Level
	stream string
	buf    []byte
}

func newLineWriter(log *slog.Logger, level slog.Level, stream string) *lineWriter {
	return &lineWriter{log: log, level: level, stream: stream}
}

const maxLogLine = 16 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > maxLogLine {
				w.emit(w.buf)
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[:copy(w.buf, w.buf[i+1:])]
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *lineWriter) emit(line []byte) {
	w.log.Log(context.Background(), w.level, string(bytes.TrimRight(line, "\r")), "stream", w.stream)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
