package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// phase names the guest callback an instance is running; host functions use it to know which context is current
// and what that context may touch.
type phase uint8

const (
	phaseIdle phase = iota
	phaseInitialize
	phaseRootCreate
	phaseVMStart
	phaseConfigure
	phaseTick
	phaseQueueReady
	phaseRootDone
	phaseRootDelete
	// Stream phases follow; isStream relies on the order.
	phaseContextCreate
	phaseRequestHeaders
	phaseRequestBody
	phaseResponseHeaders
	phaseResponseBody
	phaseLog
	phaseDone
	phaseDelete
)

var phaseNames = [...]string{
	phaseIdle:            "idle",
	phaseInitialize:      "_initialize",
	phaseRootCreate:      "proxy_on_context_create (root)",
	phaseVMStart:         "proxy_on_vm_start",
	phaseConfigure:       "proxy_on_configure",
	phaseTick:            "proxy_on_tick",
	phaseQueueReady:      "proxy_on_queue_ready",
	phaseRootDone:        "proxy_on_done (root)",
	phaseRootDelete:      "proxy_on_delete (root)",
	phaseContextCreate:   "proxy_on_context_create",
	phaseRequestHeaders:  "proxy_on_request_headers",
	phaseRequestBody:     "proxy_on_request_body",
	phaseResponseHeaders: "proxy_on_response_headers",
	phaseResponseBody:    "proxy_on_response_body",
	phaseLog:             "proxy_on_log",
	phaseDone:            "proxy_on_done",
	phaseDelete:          "proxy_on_delete",
}

func (p phase) String() string { return phaseNames[p] }

func (p phase) isStream() bool { return p >= phaseContextCreate }

// rootContextID is the id of the plugin (root) context. proxy-wasm-cpp-host numbers contexts per VM from 1, 0 being
// the VM itself, and the plugin's root context is the first one created.
const rootContextID = 1

// instanceContext is the context every call into the guest passes, built once per instance (instantiation runs no
// start function, so no host function is called with another). A host function finds its instance with one type
// assertion (instanceOf); any other lookup, such as wazero's own on each call, ends at context.Background().
type instanceContext struct {
	context.Context // context.Background()
	inst            *instance
}

// guestFuncs are the module's exported functions, looked up once per instance.
type guestFuncs struct {
	initialize, main, mainVoid, start                                      api.Function
	contextCreate, vmStart, configure, done, log, delete, tick, queueReady api.Function
	requestHeaders, requestBody, responseHeaders, responseBody, malloc     api.Function
}

// instance is one instantiation of the module with its root context, like the VM of one Envoy worker thread. Any
// number of streams are pinned to it; mu serialises the calls into the guest (a wazero module is not safe for
// concurrent calls, and an Envoy worker is single-threaded), and every field below it belongs to whoever holds mu.
type instance struct {
	h      *Host
	slot   *poolSlot // the pool position this instance fills
	mod    api.Module
	mem    api.Memory
	ctx    context.Context
	serial uint64
	fn     guestFuncs

	// active counts the streams pinned to the instance (NewStream to Close), for the least-loaded choice.
	active atomic.Int32
	// nextID numbers the instance's contexts; NewStream takes ids without the lock.
	nextID atomic.Uint32
	// dead is set, under mu, when a guest call failed: the module is closed and no stream may call it again.
	dead atomic.Bool

	mu sync.Mutex

	stack      [8]uint64 // arguments and result of the callback being called
	allocStack [1]uint64 // malloc's, separate because malloc runs inside host functions

	phase     phase
	cur       *streamState // the stream whose callback is running (phase.isStream())
	effective uint32       // context chosen by proxy_set_effective_context in the running callback; 0 = none
	effSt     *streamState // that context's stream, nil for the root context
	streams   contextTable // the live stream contexts, by id
	failErr   error        // why the instance died, for the streams that find it dead

	scratch []byte      // property values and other short-lived serializations
	pairs   [][2]string // parsed header lists

	tickPeriod time.Duration
	lastTick   time.Time

	queueMu      sync.Mutex
	queueReady   []uint32
	queuePending atomic.Bool

	pendingDone bool  // the root context's proxy_on_done returned false during shutdown
	memSize     int64 // guest memory size last added to Stats.GuestMemoryBytes

	allocRestriction restriction // the allocator's, built once
	// restrict is set while the host runs _initialize and main or the allocator: the imports allowed then.
	restrict *restriction
	closed   bool
}

func (inst *instance) logger() *slog.Logger { return inst.h.guestLog }

// newInstance instantiates the module and runs the start-up sequence of proxy-wasm-cpp-host: _initialize (then
// main or __main_void when exported), or _start for a WASI command; then proxy_on_context_create(root, 0),
// proxy_on_vm_start(root, vm_configuration_size) and proxy_on_configure(root, plugin_configuration_size). A
// false from either of the last two, or any trap, fails the instance.
func (h *Host) newInstance(ctx context.Context, sl *poolSlot) (*instance, error) {
	inst := &instance{h: h, slot: sl, serial: h.serial.Add(1)}
	inst.nextID.Store(rootContextID)
	inst.allocRestriction = restriction{allowed: h.profile.allocAllowed, during: "the allocator (" + allocatorName(h.info) + ")"}
	mod, err := h.runtime.InstantiateModule(ctx, h.compiled, h.moduleConfig)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: instantiating the module: %w", err)
	}
	inst.mod = mod
	inst.mem = mod.Memory()
	inst.ctx = &instanceContext{Context: context.Background(), inst: inst}
	f := &inst.fn
	f.initialize = mod.ExportedFunction("_initialize")
	f.main = mod.ExportedFunction("main")
	f.mainVoid = mod.ExportedFunction("__main_void")
	f.start = mod.ExportedFunction("_start")
	f.contextCreate = mod.ExportedFunction("proxy_on_context_create")
	f.vmStart = mod.ExportedFunction("proxy_on_vm_start")
	f.configure = mod.ExportedFunction("proxy_on_configure")
	f.done = mod.ExportedFunction("proxy_on_done")
	f.log = mod.ExportedFunction("proxy_on_log")
	f.delete = mod.ExportedFunction("proxy_on_delete")
	f.tick = mod.ExportedFunction("proxy_on_tick")
	f.queueReady = mod.ExportedFunction("proxy_on_queue_ready")
	f.requestHeaders = mod.ExportedFunction("proxy_on_request_headers")
	f.requestBody = mod.ExportedFunction("proxy_on_request_body")
	f.responseHeaders = mod.ExportedFunction("proxy_on_response_headers")
	f.responseBody = mod.ExportedFunction("proxy_on_response_body")
	f.malloc = mod.ExportedFunction("malloc")
	if f.malloc == nil {
		f.malloc = mod.ExportedFunction("proxy_on_memory_allocate")
	}
	if err := inst.startUp(); err != nil {
		inst.close()
		return nil, err
	}
	inst.trackMemory()
	h.stats.instances.Add(1)
	return inst, nil
}

// trackMemory brings Stats.GuestMemoryBytes up to date with the instance's memory, which only the guest grows;
// the caller holds mu (or is the only user of a new instance).
func (inst *instance) trackMemory() {
	if n := int64(inst.mem.Size()); n != inst.memSize {
		inst.h.stats.guestMem.Add(n - inst.memSize)
		inst.memSize = n
	}
}

func (inst *instance) startUp() error {
	if err := inst.startVM(); err != nil {
		return err
	}
	f := &inst.fn
	inst.stack[0], inst.stack[1] = rootContextID, 0
	if _, err := inst.call(f.contextCreate, phaseRootCreate, 2); err != nil {
		return err
	}
	inst.stack[0], inst.stack[1] = rootContextID, uint64(len(inst.h.opts.VMConfig))
	ok, err := inst.call(f.vmStart, phaseVMStart, 2)
	if err != nil {
		return err
	}
	if uint32(ok) == 0 {
		return errors.New("wasmhost: plugin rejected its VM configuration (proxy_on_vm_start returned false); see its log")
	}
	inst.stack[0], inst.stack[1] = rootContextID, uint64(len(inst.h.opts.PluginConfig))
	ok, err = inst.call(f.configure, phaseConfigure, 2)
	if err != nil {
		return err
	}
	if uint32(ok) == 0 {
		return errors.New("wasmhost: plugin rejected its configuration (proxy_on_configure returned false); see its log")
	}
	return nil
}

// startVM is cpp-host's WasmBase::startVm: _initialize, then main (or, from cpp-host e55d150, __main_void) for a
// WASI reactor, or _start for a WASI command, all under the profile's start-up restriction.
func (inst *instance) startVM() error {
	f := &inst.fn
	inst.restrict = &restriction{allowed: inst.h.profile.initAllowed, during: "_initialize"}
	defer func() { inst.restrict = nil }()
	switch {
	case f.initialize != nil:
		if _, err := inst.call(f.initialize, phaseInitialize, 0); err != nil {
			return err
		}
		if f.main != nil {
			inst.restrict.during = "main"
			inst.stack[0], inst.stack[1] = 0, 0
			if _, err := inst.call(f.main, phaseInitialize, 2); err != nil {
				return err
			}
		} else if f.mainVoid != nil && inst.h.profile.callsMainVoid {
			inst.restrict.during = "__main_void"
			if _, err := inst.call(f.mainVoid, phaseInitialize, 0); err != nil {
				return err
			}
		}
	case f.start != nil:
		inst.restrict.during = "_start"
		if _, err := inst.call(f.start, phaseInitialize, 0); err != nil {
			return fmt.Errorf("%w (a module that exports _start is a WASI command; build the plugin with -buildmode=c-shared)", err)
		}
	}
	return nil
}

// call runs fn with the first n values of inst.stack as arguments and returns its result (0 for none). Any error
// (trap, panic in a host function, proc_exit) is returned with the callback's name; the instance must then be
// discarded.
func (inst *instance) call(fn api.Function, ph phase, n int) (uint64, error) {
	inst.phase, inst.effective, inst.effSt = ph, 0, nil
	var err error
	if p := inst.h.opts.Platform; p != nil && p.CallbackCPU > 0 && ph.metered() {
		err = inst.callMetered(fn, n, p.CallbackCPU)
	} else {
		err = fn.CallWithStack(inst.ctx, inst.stack[:max(n, 1)])
	}
	inst.phase, inst.effective, inst.effSt = phaseIdle, 0, nil
	if err != nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) {
			return 0, fmt.Errorf("wasmhost: %s: the plugin exited with code %d (proc_exit)", ph, exit.ExitCode())
		}
		return 0, fmt.Errorf("wasmhost: %s: %w", ph, err)
	}
	return inst.stack[0], nil
}

func (inst *instance) call1(fn api.Function, ph phase, a uint64) (uint64, error) {
	inst.stack[0] = a
	return inst.call(fn, ph, 1)
}

func (inst *instance) call2(fn api.Function, ph phase, a, b uint64) (uint64, error) {
	inst.stack[0], inst.stack[1] = a, b
	return inst.call(fn, ph, 2)
}

func (inst *instance) call3(fn api.Function, ph phase, a, b, c uint64) (uint64, error) {
	inst.stack[0], inst.stack[1], inst.stack[2] = a, b, c
	return inst.call(fn, ph, 3)
}

// newStreamID allocates a context id of this instance, never 0 or the root's: ids are per VM, as in
// proxy-wasm-cpp-host, whose counter wraps the same way. It is called without the lock.
func (inst *instance) newStreamID() uint32 {
	for {
		if id := inst.nextID.Add(1); id > rootContextID {
			return id
		}
	}
}

// idleWork delivers what the root context is owed: a due proxy_on_tick and pending proxy_on_queue_ready
// notifications. Envoy runs both from its event loop; here they run, under the lock, when a stream of the instance
// closes, so an instance whose streams do not close gets its tick at the next close.
func (inst *instance) idleWork() error {
	if inst.tickPeriod > 0 && inst.fn.tick != nil {
		if now := inst.h.opts.Now(); now.Sub(inst.lastTick) >= inst.tickPeriod {
			inst.lastTick = now
			if _, err := inst.call1(inst.fn.tick, phaseTick, rootContextID); err != nil {
				return err
			}
		}
	}
	if inst.queuePending.Load() {
		inst.queueMu.Lock()
		tokens := inst.queueReady
		inst.queueReady = nil
		inst.queuePending.Store(false)
		inst.queueMu.Unlock()
		if inst.fn.queueReady != nil {
			for _, tok := range tokens {
				if _, err := inst.call2(inst.fn.queueReady, phaseQueueReady, rootContextID, uint64(tok)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (inst *instance) notifyQueue(tok uint32) {
	inst.queueMu.Lock()
	inst.queueReady = append(inst.queueReady, tok)
	inst.queuePending.Store(true)
	inst.queueMu.Unlock()
}

// shutdown ends the root context like proxy-wasm-cpp-host's startShutdown: proxy_on_done, then proxy_on_delete
// when it returned true. A plugin that returns false would call proxy_done later; the host does not wait for it.
func (inst *instance) shutdown() {
	if inst.fn.done != nil {
		done, err := inst.call1(inst.fn.done, phaseRootDone, rootContextID)
		if err != nil {
			inst.logger().Warn("wasmhost: plugin failed while shutting down", "error", err)
			return
		}
		if uint32(done) == 0 {
			inst.pendingDone = true
			inst.logger().Debug("wasmhost: plugin asked to finish later (proxy_on_done returned false); closing anyway")
			return
		}
	}
	if inst.fn.delete != nil {
		if _, err := inst.call1(inst.fn.delete, phaseRootDelete, rootContextID); err != nil {
			inst.logger().Warn("wasmhost: plugin failed while shutting down", "error", err)
		}
	}
}

// close releases the module. The instance must not be used afterwards.
func (inst *instance) close() {
	if inst.closed {
		return
	}
	inst.closed = true
	inst.h.stats.guestMem.Add(-inst.memSize)
	inst.memSize = 0
	inst.h.queues.disown(inst)
	if inst.mod != nil {
		_ = inst.mod.Close(context.Background())
	}
}

// Guest memory helpers. Views returned by mem.Read alias guest memory and go stale when the guest grows it, so
// anything kept is copied first.

// alloc reserves size bytes in the guest with its allocator (malloc, or proxy_on_memory_allocate) and returns the
// address and a view of the block. The allocator runs under the profile's allocator restriction, lifted afterwards
// as cpp-host's allocMemory does. A trap inside the allocator is re-raised as a panic, which wazero turns into the
// error of the callback that is running: the callback failed.
func (inst *instance) alloc(size uint32) (uint32, []byte, bool) {
	inst.allocStack[0] = uint64(size)
	inst.restrict = &inst.allocRestriction
	err := inst.fn.malloc.CallWithStack(inst.ctx, inst.allocStack[:])
	inst.restrict = nil
	if err != nil {
		panic(fmt.Errorf("memory allocation of %d bytes failed: %w", size, err))
	}
	ptr := uint32(inst.allocStack[0])
	if ptr == 0 {
		return 0, nil, false
	}
	view, ok := inst.mem.Read(ptr, size)
	return ptr, view, ok
}

// copyOut is proxy-wasm-cpp-host's copyToPointerSize: it copies data into a fresh guest block and writes the
// block's address and size to ptrPtr and sizePtr; an empty value is returned as address 0, size 0.
func (inst *instance) copyOut(data []byte, ptrPtr, sizePtr uint32) bool {
	return copyToGuest(inst, data, ptrPtr, sizePtr)
}

// copyOutString is copyOut for a string, without converting it to a byte slice first.
func (inst *instance) copyOutString(s string, ptrPtr, sizePtr uint32) bool {
	return copyToGuest(inst, s, ptrPtr, sizePtr)
}

func copyToGuest[T string | []byte](inst *instance, data T, ptrPtr, sizePtr uint32) bool {
	var ptr uint32
	if len(data) > 0 {
		p, view, ok := inst.alloc(uint32(len(data)))
		if !ok {
			return false
		}
		copy(view, data)
		ptr = p
	}
	return inst.mem.WriteUint32Le(ptrPtr, ptr) && inst.mem.WriteUint32Le(sizePtr, uint32(len(data)))
}

// currentStream returns the stream context the running callback acts on, or nil for the root context: the
// stream whose callback runs, unless proxy_set_effective_context chose another context of the instance.
func (inst *instance) currentStream() *streamState {
	if inst.effective != 0 {
		return inst.effSt
	}
	if inst.phase.isStream() {
		return inst.cur
	}
	return nil
}

// newModuleConfig is the per-instance module configuration: no name and no start functions, so that _initialize is
// called by the host under cpp-host's restriction and its failure reported as such. WASI is the host's own
// (wasi.go), so none of wazero's WASI settings apply.
func newModuleConfig() wazero.ModuleConfig {
	return wazero.NewModuleConfig().WithName("").WithStartFunctions()
}
