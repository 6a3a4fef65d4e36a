package host

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The "wasi_snapshot_preview1" host module, as proxy-wasm-cpp-host implements it in src/exports.cc: not a WASI, but
// the few answers a proxy gives a plugin, and errors or stubs for the rest. Each function below follows cpp-host at
// the commit of the profile, status for status, writing what it writes and leaving alone what it leaves alone.
// wazero's own WASI is not used: it is a complete WASI, kinder than any Envoy.

const wasiModule = "wasi_snapshot_preview1"

// WASI errno values that cpp-host returns.
const (
	errnoSuccess  uint32 = 0
	errnoBadf     uint32 = 8
	errnoFault    uint32 = 21
	errnoInval    uint32 = 28
	errnoNoent    uint32 = 44
	errnoNosys    uint32 = 52
	errnoNotdir   uint32 = 20
	errnoNotsup   uint32 = 58
	wasiRandomMax        = 64 << 10 // PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES
)

// wasiFunc is one WASI function: its parameters as cpp-host declares them ("i64" for uint64_t and int64_t, "i32"
// for Word), and its body, which returns the errno. void marks proc_exit, the only one without a result.
type wasiFunc struct {
	name   string
	params string // one letter a parameter: 'i' i32, 'I' i64
	fn     func(inst *instance, stack []uint64) uint32
	void   bool
}

// wasiC4d7bb0 is cpp-host c4d7bb0's FOR_ALL_WASI_FUNCTIONS (include/proxy-wasm/exports.h).
var wasiC4d7bb0 = []wasiFunc{
	{name: "fd_write", params: "iiii", fn: writeTo(3)},
	{name: "fd_read", params: "iiii", fn: answer(errnoNosys)},
	{name: "fd_seek", params: "iIii", fn: wasiTraceOnly("fd_seek")},
	{name: "fd_close", params: "i", fn: wasiTraceOnly("fd_close")},
	{name: "fd_fdstat_get", params: "ii", fn: wasiFdFdstatGet},
	{name: "fd_fdstat_set_flags", params: "ii", fn: answer(errnoNosys)},
	{name: "environ_get", params: "ii", fn: wasiEnvironGet},
	{name: "environ_sizes_get", params: "ii", fn: wasiEnvironSizesGet},
	{name: "args_get", params: "ii", fn: answer(errnoSuccess)},
	{name: "args_sizes_get", params: "ii", fn: wasiArgsSizesGet},
	{name: "clock_time_get", params: "iIi", fn: wasiClockTimeGet},
	{name: "random_get", params: "ii", fn: wasiRandomGet},
	{name: "sched_yield", params: "", fn: answer(errnoSuccess)},
	{name: "poll_oneoff", params: "iiii", fn: answer(errnoNosys)},
	{name: "proc_exit", params: "i", fn: wasiProcExit, void: true},
	{name: "path_open", params: "iiiiiIIii", fn: answer(errnoNoent)},
	{name: "fd_prestat_get", params: "ii", fn: answer(errnoBadf)},
	{name: "fd_prestat_dir_name", params: "iii", fn: answer(errnoNosys)},
}

// wasi94091cd is cpp-host 94091cd's list: c4d7bb0's with poll_oneoff answering "no events", and the rest of WASI
// preview 1 as stubs. The parameters are cpp-host's, which for path_link and path_symlink are not WASI's (one path
// length fewer): a module importing either with WASI's signature does not link in that Envoy.
var wasi94091cd = func() []wasiFunc {
	fs := make([]wasiFunc, 0, 45)
	for _, f := range wasiC4d7bb0 {
		if f.name == "poll_oneoff" {
			f.fn = zeroThen(3, 4, errnoSuccess) // nevents = 0: no subscription is looked at
		}
		fs = append(fs, f)
	}
	stdio := func(f func(inst *instance, stack []uint64) uint32) func(*instance, []uint64) uint32 {
		return func(inst *instance, stack []uint64) uint32 {
			if fd := arg(stack, 0); fd != 1 && fd != 2 {
				return errnoBadf
			}
			return f(inst, stack)
		}
	}
	return append(fs,
		wasiFunc{name: "fd_fdstat_set_rights", params: "iII", fn: stdio(answer(errnoSuccess))},
		wasiFunc{name: "clock_res_get", params: "ii", fn: wasiClockResGet},
		wasiFunc{name: "fd_advise", params: "iIIi", fn: answer(errnoSuccess)},
		wasiFunc{name: "fd_allocate", params: "iII", fn: stdio(answer(errnoSuccess))},
		wasiFunc{name: "fd_datasync", params: "i", fn: stdio(answer(errnoSuccess))},
		wasiFunc{name: "fd_filestat_set_size", params: "iI", fn: stdio(answer(errnoSuccess))},
		wasiFunc{name: "fd_filestat_set_times", params: "iIIi", fn: stdio(answer(errnoSuccess))},
		wasiFunc{name: "fd_pread", params: "iiiIi", fn: answer(errnoNosys)},
		wasiFunc{name: "fd_pwrite", params: "iiiIi", fn: stdio(writeTo(4))},
		wasiFunc{name: "fd_readdir", params: "iiiIi", fn: zeroThen(4, 4, errnoNotdir)},
		wasiFunc{name: "fd_renumber", params: "ii", fn: wasiFdRenumber},
		wasiFunc{name: "fd_sync", params: "i", fn: stdio(answer(errnoSuccess))},
		wasiFunc{name: "fd_tell", params: "ii", fn: stdio(zeroThen(1, 8, errnoSuccess))},
		wasiFunc{name: "path_create_directory", params: "iii", fn: answer(errnoNotsup)},
		wasiFunc{name: "path_filestat_set_times", params: "iiiiIIi", fn: answer(errnoNotsup)},
		wasiFunc{name: "path_link", params: "iiiiii", fn: answer(errnoNotsup)},
		wasiFunc{name: "path_readlink", params: "iiiiii", fn: zeroThen(5, 4, errnoNotsup)},
		wasiFunc{name: "path_remove_directory", params: "iii", fn: answer(errnoNotsup)},
		wasiFunc{name: "path_rename", params: "iiiiii", fn: answer(errnoNotsup)},
		wasiFunc{name: "path_symlink", params: "iiii", fn: answer(errnoNotsup)},
		wasiFunc{name: "path_unlink_file", params: "iii", fn: answer(errnoNotsup)},
		wasiFunc{name: "sock_accept", params: "iii", fn: zeroThen(2, 8, errnoNotsup)},
		wasiFunc{name: "sock_recv", params: "iiiiii", fn: wasiSockRecv},
		wasiFunc{name: "sock_send", params: "iiiii", fn: zeroThen(4, 4, errnoNotsup)},
		wasiFunc{name: "sock_shutdown", params: "ii", fn: answer(errnoNotsup)},
		wasiFunc{name: "path_filestat_get", params: "iiiii", fn: answer(errnoNotsup)},
		wasiFunc{name: "fd_filestat_get", params: "ii", fn: answer(errnoBadf)},
	)
}()

// instantiateWASI registers the profile's WASI functions as the wasi_snapshot_preview1 module of r. Like the env
// functions they find the calling instance through the context, and refuse to run while a restriction forbids them.
func instantiateWASI(ctx context.Context, r wazero.Runtime, p *EnvoyProfile) error {
	b := r.NewHostModuleBuilder(wasiModule)
	for _, f := range p.wasi {
		params := make([]api.ValueType, len(f.params))
		for i, c := range f.params {
			params[i] = api.ValueTypeI32
			if c == 'I' {
				params[i] = api.ValueTypeI64
			}
		}
		var results []api.ValueType
		if !f.void {
			results = []api.ValueType{api.ValueTypeI32}
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(f.goModuleFunc(), params, results).
			Export(f.name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasmhost: WASI: %w", err)
	}
	return nil
}

func (f wasiFunc) goModuleFunc() api.GoModuleFunc {
	name, fn, void := wasiModule+"."+f.name, f.fn, f.void
	return func(ctx context.Context, _ api.Module, stack []uint64) {
		inst := instanceOf(ctx)
		inst.checkRestricted(name)
		errno := fn(inst, stack)
		if !void {
			stack[0] = uint64(errno)
		}
	}
}

// answer is a function that only returns its errno, as most of cpp-host's stubs do.
func answer(errno uint32) func(*instance, []uint64) uint32 {
	return func(*instance, []uint64) uint32 { return errno }
}

// wasiTraceOnly is cpp-host's fd_seek and fd_close: Envoy's Context::error logs the call at trace level, and the
// guest gets success with nothing written.
func wasiTraceOnly(name string) func(*instance, []uint64) uint32 {
	msg := "wasi_unstable " + name
	return func(inst *instance, _ []uint64) uint32 {
		inst.logger().Log(context.Background(), slogLevelTrace, msg, "context_id", inst.contextID())
		return errnoSuccess
	}
}

// slogLevelTrace is the level this host logs Envoy's trace messages at.
const slogLevelTrace = slog.LevelDebug - 4

// wasiProcExit is cpp-host's proc_exit: Envoy logs it at trace level and returns to the guest, which runs on. The
// module does not end; whatever the guest does after a proc_exit that returns is what happens in Envoy.
func wasiProcExit(inst *instance, stack []uint64) uint32 {
	inst.logger().Log(context.Background(), slogLevelTrace, "wasi_unstable proc_exit", "exit_code", arg(stack, 0), "context_id", inst.contextID())
	return errnoSuccess
}

// writev is cpp-host's writevImpl: stdout is logged at info, stderr at error, one record per call with one trailing
// newline removed; any other fd is EBADF, any iovec or buffer outside memory EFAULT (nothing logged then).
func writev(inst *instance, fd, iovs, iovsLen uint32) (uint32, uint32) {
	var level slog.Level
	var stream string
	switch fd {
	case 1:
		level, stream = slog.LevelInfo, "stdout"
	case 2:
		level, stream = slog.LevelError, "stderr"
	default:
		return 0, errnoBadf
	}
	var s strings.Builder
	for i := uint32(0); i < iovsLen; i++ {
		iov, ok := inst.mem.Read(iovs+i*8, 8)
		if !ok {
			return 0, errnoFault
		}
		buf, n := le32(iov[0:4]), le32(iov[4:8])
		if n == 0 {
			continue
		}
		data, ok := inst.mem.Read(buf, n)
		if !ok {
			return 0, errnoFault
		}
		s.Write(data)
	}
	written := uint32(s.Len())
	if written > 0 {
		if l := inst.logger(); l.Enabled(context.Background(), level) {
			l.Log(context.Background(), level, strings.TrimSuffix(s.String(), "\n"), "stream", stream, "context_id", inst.contextID())
		}
	}
	return written, errnoSuccess
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// writeTo is fd_write, and 94091cd's fd_pwrite on stdout and stderr (its offset ignored): writev, then the count
// written to the address in argument nwritten.
func writeTo(nwritten int) func(*instance, []uint64) uint32 {
	return func(inst *instance, stack []uint64) uint32 {
		n, errno := writev(inst, arg(stack, 0), arg(stack, 1), arg(stack, 2))
		if errno != errnoSuccess {
			return errno
		}
		if !inst.mem.WriteUint32Le(arg(stack, nwritten), n) {
			return errnoFault
		}
		return errnoSuccess
	}
}

// wasiFdFdstatGet answers for stdout and stderr only: filetype and flags 0, rights_base FD_WRITE (64), inheriting 0.
// cpp-host ignores whether the 24 bytes could be written and succeeds either way.
func wasiFdFdstatGet(inst *instance, stack []uint64) uint32 {
	if fd := arg(stack, 0); fd != 1 && fd != 2 {
		return errnoBadf
	}
	var stat [24]byte
	stat[8] = 64
	inst.mem.Write(arg(stack, 1), stat[:])
	return errnoSuccess
}

// wasiEnvironGet writes the environment (Options.Env, Envoy's vm_config.environment_variables) as cpp-host does,
// pointer then string for each variable, stopping with EFAULT at the first write outside memory.
func wasiEnvironGet(inst *instance, stack []uint64) uint32 {
	array, buf := arg(stack, 0), arg(stack, 1)
	for _, kv := range inst.h.environ {
		if !inst.mem.WriteUint32Le(array, buf) {
			return errnoFault
		}
		if !inst.mem.WriteString(buf, kv) {
			return errnoFault
		}
		buf += uint32(len(kv))
		array += 4
	}
	return errnoSuccess
}

func wasiEnvironSizesGet(inst *instance, stack []uint64) uint32 {
	if !inst.mem.WriteUint32Le(arg(stack, 0), uint32(len(inst.h.environ))) {
		return errnoFault
	}
	size := 0
	for _, kv := range inst.h.environ {
		size += len(kv)
	}
	if !inst.mem.WriteUint32Le(arg(stack, 1), uint32(size)) {
		return errnoFault
	}
	return errnoSuccess
}

func wasiArgsSizesGet(inst *instance, stack []uint64) uint32 {
	if !inst.mem.WriteUint32Le(arg(stack, 0), 0) || !inst.mem.WriteUint32Le(arg(stack, 1), 0) {
		return errnoFault
	}
	return errnoSuccess
}

// wasiClockTimeGet knows the realtime (Options.Now) and monotonic clocks; the CPU-time clocks are ENOTSUP.
func wasiClockTimeGet(inst *instance, stack []uint64) uint32 {
	var t uint64
	switch arg(stack, 0) {
	case 0:
		t = uint64(inst.h.opts.Now().UnixNano())
	case 1:
		t = uint64(inst.h.monotonic())
	default:
		return errnoNotsup
	}
	if !inst.mem.WriteUint64Le(arg(stack, 2), t) {
		return errnoFault
	}
	return errnoSuccess
}

// wasiClockResGet (94091cd) answers 1 ns for realtime and monotonic.
func wasiClockResGet(inst *instance, stack []uint64) uint32 {
	if id := arg(stack, 0); id != 0 && id != 1 {
		return errnoNotsup
	}
	if !inst.mem.WriteUint64Le(arg(stack, 1), 1) {
		return errnoFault
	}
	return errnoSuccess
}

// wasiRandomGet refuses more than 64 KiB at once (EINVAL), succeeds at once for 0 bytes, and otherwise fills the
// buffer whole or, when it does not fit in memory, not at all (EFAULT).
func wasiRandomGet(inst *instance, stack []uint64) uint32 {
	ptr, n := arg(stack, 0), arg(stack, 1)
	if n > wasiRandomMax {
		return errnoInval
	}
	if n == 0 {
		return errnoSuccess
	}
	buf := make([]byte, n)
	if _, err := cryptoRand.Read(buf); err != nil {
		panic(fmt.Errorf("wasmhost: random_get: %w", err))
	}
	if !inst.mem.Write(ptr, buf) {
		return errnoFault
	}
	return errnoSuccess
}

// zeroThen writes a zero of width bytes (4: cpp-host's setWord, 8: setDatatype of a uint64) at the address in
// argument i, then answers errno; EFAULT when the address is outside memory. It is how several of cpp-host's stubs
// clear their result before refusing: poll_oneoff at 94091cd (nevents = 0, success), fd_readdir, fd_tell,
// path_readlink, sock_accept (a 64-bit zero fd) and sock_send.
func zeroThen(i, width int, errno uint32) func(*instance, []uint64) uint32 {
	return func(inst *instance, stack []uint64) uint32 {
		ok := false
		if width == 8 {
			ok = inst.mem.WriteUint64Le(arg(stack, i), 0)
		} else {
			ok = inst.mem.WriteUint32Le(arg(stack, i), 0)
		}
		if !ok {
			return errnoFault
		}
		return errno
	}
}

func wasiFdRenumber(_ *instance, stack []uint64) uint32 {
	from, to := arg(stack, 0), arg(stack, 1)
	if (from != 1 && from != 2) || (to != 1 && to != 2) {
		return errnoBadf
	}
	return errnoNotsup
}

func wasiSockRecv(inst *instance, stack []uint64) uint32 {
	if !inst.mem.WriteUint32Le(arg(stack, 4), 0) || !inst.mem.WriteUint16Le(arg(stack, 5), 0) {
		return errnoFault
	}
	return errnoNotsup
}
