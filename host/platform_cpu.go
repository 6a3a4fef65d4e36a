package host

import (
	"fmt"
	"runtime"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/cputime"
)

// callMetered runs fn as call does, with the calling goroutine locked to its OS thread so that the thread's CPU
// clock measures this callback alone, and fails a callback that used more CPU than budget. CPU time, not wall
// time: a callback that waited for the machine's other work has not spent the platform's budget. The guest is
// not interrupted mid-callback; the platform's verdict comes when the callback returns.
func (inst *instance) callMetered(fn api.Function, n int, budget time.Duration) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, _ := cputime.Thread()
	err := fn.CallWithStack(inst.ctx, inst.stack[:max(n, 1)])
	end, _ := cputime.Thread()
	used := end - start
	for m := &inst.h.stats.maxCallbackCPU; ; {
		if old := m.Load(); int64(used) <= old || m.CompareAndSwap(old, int64(used)) {
			break
		}
	}
	if err == nil && used > budget {
		return fmt.Errorf("used %v of CPU, over platform %s's budget of %v per callback; the platform terminates the plugin",
			used, inst.h.opts.Platform.Name, budget)
	}
	return err
}

func cpuClockAvailable() bool {
	_, ok := cputime.Thread()
	return ok
}
