package host

import (
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

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

var cryptoRand = rand.Reader

// maxMemoryPages caps guest memory at 1 GiB, proxy-wasm-cpp-host's PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES.
const maxMemoryPages = 1 << 30 / 65536

// ErrClosed is returned by NewStream once Close has been called.
var ErrClosed = errors.New("wasmhost: host closed")

// Host runs one Proxy-Wasm plugin: the module compiled once, a fixed set of instances (Options.PoolSize), each
// carrying any number of streams, and what the instances share (metrics, shared data, shared queues). It is safe
// for concurrent use; each Stream it hands out belongs to one goroutine.
type Host struct {
	opts         Options
	info         ModuleInfo
	runtime      wazero.Runtime
	compiled     wazero.CompiledModule
	moduleConfig wazero.ModuleConfig
	guestLog     *slog.Logger
	profile      *EnvoyProfile
	environ      []string  // Options.Env as WASI hands it out: "name=value\x00", sorted by name
	monoStart    time.Time // origin of the WASI monotonic clock

	metrics *metricRegistry
	shared  sharedData
	queues  sharedQueues

	// slots are the PoolSize positions of the pool, each holding a live instance or, after a failure, nothing
	// until its replacement is ready. rr rotates the starting point of the least-loaded search so that ties are
	// broken round-robin.
	slots  []poolSlot
	rr     atomic.Uint32
	poolMu sync.Mutex // guards the replacement state of every slot

	// streamSem bounds the open streams when Options.MaxStreams is set; nil otherwise.
	streamSem chan struct{}
	// closing is set by Close; drained wakes Close when the last open stream closes after that.
	closing   atomic.Bool
	drained   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	serial    atomic.Uint64

	stats struct {
		streams, traps, failOpen, failClosed, reloads, localReplies atomic.Uint64
		active, instances, guestMem                                 atomic.Int64
		maxCallbackCPU                                              atomic.Int64
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
	// GuestMemoryBytes is the linear memory of the live instances added up, as of each one's start and the last
	// close of one of its streams: a Go guest's memory grows over its first streams and must then stay flat.
	GuestMemoryBytes int64
	// MaxCallbackCPU is the most CPU time one HTTP callback has used, measured only under a Platform with a CPU
	// budget (zero otherwise).
	MaxCallbackCPU time.Duration
}

// New compiles the module, checks it the way Envoy would load it, and creates all PoolSize instances (running
// _initialize, proxy_on_vm_start and proxy_on_configure in each), so that a bad module or a configuration the
// plugin rejects fails here rather than on the first request, and no stream ever waits for an instantiation.
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
		opts:      o,
		info:      info,
		metrics:   newMetricRegistry(),
		slots:     make([]poolSlot, o.PoolSize),
		drained:   make(chan struct{}, 1),
		done:      make(chan struct{}),
		guestLog:  o.Logger.With("component", "wasm", "plugin", o.PluginName),
		profile:   o.profile,
		environ:   wasiEnviron(o.Env),
		monoStart: time.Now(),
	}
	rc := wazero.NewRuntimeConfig().WithMemoryLimitPages(o.Platform.memoryLimitPages())
	if o.Platform != nil && o.Platform.MemoryLimitBytes > 0 {
		// Reserve the platform's memory up front: a growing guest then costs no copy of its memory, which a V8
		// host does not pay either and which would otherwise count against the platform's CPU budget.
		rc = rc.WithMemoryCapacityFromMax(true)
	}
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
	if err := instantiateWASI(ctx, h.runtime, h.profile); err != nil {
		return fail(err)
	}
	if err := instantiateEnv(ctx, h.runtime, o.Platform); err != nil {
		return fail(err)
	}
	if err := h.checkImportTypes(); err != nil {
		return fail(err)
	}
	h.compiled, err = h.runtime.CompileModule(ctx, o.Module)
	if err != nil {
		return fail(fmt.Errorf("wasmhost: compiling the module: %w", err))
	}
	h.moduleConfig = newModuleConfig()
	if o.MaxStreams > 0 {
		h.streamSem = make(chan struct{}, o.MaxStreams)
	}
	// Instances are created one after the other: the first one to fail stops the start-up with its error, and
	// the plugin's start-up logs stay in order.
	for i := range h.slots {
		inst, err := h.newInstance(ctx, &h.slots[i])
		if err != nil {
			for j := range h.slots[:i] {
				inst := h.slots[j].inst.Load()
				inst.close()
				h.stats.instances.Add(-1)
			}
			return fail(err)
		}
		h.slots[i].inst.Store(inst)
	}
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

// poolSlot is one position of the pool. inst is read without a lock on the stream path; the rest is guarded by
// Host.poolMu.
type poolSlot struct {
	inst atomic.Pointer[instance] // the live instance, or nil while a failed one awaits its replacement

	creating chan struct{} // non-nil while a replacement is being instantiated; closed when that ends
	err      error         // why the last replacement failed, nil after a success
	failedAt time.Time     // when it failed, to space out background retries
}

// replaceRetry spaces out the background retries of a replacement that failed to instantiate, while other
// instances carry the streams; a NewStream that finds no live instance at all retries at once.
const replaceRetry = time.Second

// NewStream pins a new HTTP stream to the live instance with the fewest open streams (ties taken in turn) and
// returns it. It never waits for other streams, except when Options.MaxStreams streams are open: then it waits
// for one to close, or for ctx to end. The plugin's context for the stream is created at its first callback, as
// Envoy does in decodeHeaders. When every instance has failed and none can be replaced, NewStream returns the
// instantiation error; a later call tries again.
func (h *Host) NewStream(ctx context.Context, info StreamInfo) (*Stream, error) {
	if h.streamSem != nil {
		if err := h.acquireStream(ctx); err != nil {
			return nil, err
		}
	}
	h.stats.active.Add(1)
	if h.closing.Load() {
		h.leave()
		return nil, ErrClosed
	}
	inst := h.pick()
	if inst == nil {
		var err error
		if inst, err = h.pickSlow(ctx); err != nil {
			h.leave()
			return nil, err
		}
	}
	inst.active.Add(1)
	st := streamStates.Get().(*streamState)
	st.begin(inst.newStreamID(), info, h.opts.Now())
	h.stats.streams.Add(1)
	return &Stream{h: h, inst: inst, st: st}, nil
}

// acquireStream waits for one of the Options.MaxStreams places.
func (h *Host) acquireStream(ctx context.Context) error {
	select {
	case h.streamSem <- struct{}{}:
		return nil
	default:
	}
	select {
	case h.streamSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wasmhost: waiting for one of the %d streams to close: %w", cap(h.streamSem), ctx.Err())
	case <-h.done:
		return ErrClosed
	}
}

// leave undoes the accounting of a stream: it ends when the stream closes or NewStream gives up.
func (h *Host) leave() {
	if h.streamSem != nil {
		<-h.streamSem
	}
	if h.stats.active.Add(-1) == 0 && h.closing.Load() {
		select {
		case h.drained <- struct{}{}:
		default:
		}
	}
}

// pick returns the live instance with the fewest open streams, starting its search at a rotating position so that
// ties go round-robin, or nil when no instance is alive. An empty slot whose replacement failed earlier gets a new
// attempt in the background.
func (h *Host) pick() *instance {
	n := len(h.slots)
	if n == 1 {
		if inst := h.slots[0].inst.Load(); inst != nil && !inst.dead.Load() {
			return inst
		}
		return nil
	}
	start := int(h.rr.Add(1) % uint32(n))
	var best *instance
	var least int32
	for i := 0; i < n; i++ {
		sl := &h.slots[(start+i)%n]
		inst := sl.inst.Load()
		if inst == nil {
			h.retryReplacement(sl)
			continue
		}
		if inst.dead.Load() {
			continue
		}
		if a := inst.active.Load(); best == nil || a < least {
			best, least = inst, a
		}
	}
	return best
}

// retryReplacement starts a background replacement for an empty slot whose last attempt failed long enough ago.
func (h *Host) retryReplacement(sl *poolSlot) {
	h.poolMu.Lock()
	defer h.poolMu.Unlock()
	if sl.inst.Load() == nil && sl.creating == nil && sl.err != nil && time.Since(sl.failedAt) >= replaceRetry {
		h.replaceLocked(sl)
	}
}

// pickSlow handles a pool without a live instance: every empty slot gets a replacement attempt now, and the stream
// takes the first instance that comes up. Replacements that come up and fail again before this stream gets one
// (other streams trapping them) start another round; when a round's attempts all fail to instantiate, the error
// says why.
func (h *Host) pickSlow(ctx context.Context) (*instance, error) {
	for {
		h.poolMu.Lock()
		var pending []*poolSlot
		var waits []chan struct{}
		for i := range h.slots {
			sl := &h.slots[i]
			if inst := sl.inst.Load(); inst != nil && inst.dead.Load() {
				// Its failure is being handled (see failed); the slot is as good as empty.
				sl.inst.Store(nil)
			}
			if sl.inst.Load() == nil && sl.creating == nil {
				h.replaceLocked(sl)
			}
			if sl.creating != nil {
				pending, waits = append(pending, sl), append(waits, sl.creating)
			}
		}
		h.poolMu.Unlock()
		for _, ch := range waits {
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, fmt.Errorf("wasmhost: waiting for a plugin instance to be replaced: %w", ctx.Err())
			case <-h.done:
				return nil, ErrClosed
			}
			if inst := h.pick(); inst != nil {
				return inst, nil
			}
		}
		if inst := h.pick(); inst != nil {
			return inst, nil
		}
		var err error
		h.poolMu.Lock()
		for _, sl := range pending {
			if err = sl.err; err == nil {
				break
			}
		}
		h.poolMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("wasmhost: no plugin instance available: replacing a failed instance: %w", err)
		}
		if h.closing.Load() {
			return nil, ErrClosed
		}
	}
}

// replaceLocked starts instantiating a replacement for an empty slot; h.poolMu is held.
func (h *Host) replaceLocked(sl *poolSlot) {
	ch := make(chan struct{})
	sl.creating = ch
	go func() {
		inst, err := h.newInstance(context.Background(), sl)
		h.poolMu.Lock()
		sl.creating = nil
		switch {
		case err != nil:
			sl.err, sl.failedAt = err, time.Now()
		case h.closing.Load():
			// Close waits for this replacement and then shuts down what is in the slots; this one never served.
			inst.close()
			h.stats.instances.Add(-1)
		default:
			sl.err = nil
			sl.inst.Store(inst)
		}
		h.poolMu.Unlock()
		close(ch)
		if err != nil {
			h.guestLog.Error("wasmhost: replacing a failed instance failed; a later stream will try again", "error", err)
		}
	}()
}

// failed retires an instance whose plugin just failed; the caller holds inst.mu. The streams pinned to it find it
// dead at their next callback, and a replacement is started in the background for the streams to come, whatever
// the failure policy. It is counted and logged once per instance.
func (h *Host) failed(inst *instance, err error) {
	if inst.dead.Load() {
		return
	}
	inst.dead.Store(true)
	inst.failErr = err
	inst.streams.clear()
	inst.cur, inst.effSt = nil, nil
	h.stats.traps.Add(1)
	h.stats.reloads.Add(1)
	h.stats.instances.Add(-1)
	inst.logger().Error("wasmhost: plugin failed; its instance is discarded and replaced",
		"error", err, "policy", h.opts.FailurePolicy.String(), "instance", inst.serial,
		"streams", inst.active.Load())
	inst.close()
	h.poolMu.Lock()
	defer h.poolMu.Unlock()
	sl := inst.slot
	if sl.inst.Load() != inst {
		return
	}
	sl.inst.Store(nil)
	if !h.closing.Load() && sl.creating == nil {
		h.replaceLocked(sl)
	}
}

// Close waits for open streams to close, ends each instance's root context (proxy_on_done, proxy_on_delete) and
// releases the runtime. If ctx ends first it returns ctx's error and leaves the instances alone. NewStream fails
// with ErrClosed from the moment Close is called.
func (h *Host) Close(ctx context.Context) error {
	h.closing.Store(true)
	h.closeOnce.Do(func() { close(h.done) })
	for h.stats.active.Load() != 0 {
		select {
		case <-h.drained:
		case <-ctx.Done():
			return fmt.Errorf("wasmhost: closing: %w", ctx.Err())
		}
	}
	// Replacements under way finish first (and discard their instance, see replaceLocked).
	for {
		h.poolMu.Lock()
		var pending chan struct{}
		for i := range h.slots {
			if ch := h.slots[i].creating; ch != nil {
				pending = ch
				break
			}
		}
		h.poolMu.Unlock()
		if pending == nil {
			break
		}
		select {
		case <-pending:
		case <-ctx.Done():
			return fmt.Errorf("wasmhost: closing: %w", ctx.Err())
		}
	}
	for i := range h.slots {
		inst := h.slots[i].inst.Swap(nil)
		if inst == nil {
			continue
		}
		inst.mu.Lock()
		if !inst.dead.Load() {
			inst.shutdown()
			inst.close()
			h.stats.instances.Add(-1)
		}
		inst.mu.Unlock()
	}
	return h.runtime.Close(ctx)
}

// Stats returns the host's counters.
func (h *Host) Stats() Stats {
	return Stats{
		Streams:          h.stats.streams.Load(),
		Active:           h.stats.active.Load(),
		Traps:            h.stats.traps.Load(),
		FailOpen:         h.stats.failOpen.Load(),
		FailClosed:       h.stats.failClosed.Load(),
		Reloads:          h.stats.reloads.Load(),
		Instances:        h.stats.instances.Load(),
		LocalResponses:   h.stats.localReplies.Load(),
		GuestMemoryBytes: h.stats.guestMem.Load(),
		MaxCallbackCPU:   time.Duration(h.stats.maxCallbackCPU.Load()),
	}
}

// Metrics returns the plugin's metrics, sorted by name. They are shared by all instances, like Envoy's stats.
func (h *Host) Metrics() []Metric { return h.metrics.snapshot() }

// FailurePolicy returns the policy the host answers plugin failures with.
func (h *Host) FailurePolicy() FailurePolicy { return h.opts.FailurePolicy }

// wasiEnviron is the environment as WASI's environ_get writes it. cpp-host keeps it in an unordered map; this host
// sorts it by name so that a run is reproducible.
func wasiEnviron(env map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(env) {
		out = append(out, k+"="+env[k]+"\x00")
	}
	return out
}

// monotonic is the WASI monotonic clock: nanoseconds since the host started.
func (h *Host) monotonic() int64 { return int64(time.Since(h.monoStart)) }

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
