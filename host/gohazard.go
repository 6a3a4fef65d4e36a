package host

import (
	"bytes"
	"strings"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/wasmbuild"
)

// A Go module (GOOS=wasip1) can die in Envoy 1.33 to 1.37: its runtime calls WASI poll_oneoff from netpoll, which
// every garbage collection reaches once a timer has been armed, and from usleep, and throws when the call fails.
// proxy-wasm-cpp-host c4d7bb0 answers poll_oneoff with ENOSYS, and traps any call to it made while the host runs the
// module's allocator, where Go collections often start (golang/go#78513). InspectGoRuntime tells whether a module
// carries that runtime, and whether it carries this repository's fix (internal/wasmbuild), whose functions
// leave their names in the module.

// The function names that mark the runtime and the fix.
const (
	goNetpoll       = "runtime.netpoll"
	goUsleep        = "runtime.usleep"
	goNetpollMarker = "runtime." + wasmbuild.NetpollMarker
	goUsleepMarker  = "runtime." + wasmbuild.UsleepMarker
	goPollThrow     = "poll_oneoff failed" // netpoll's throw message, in the module's data even without names
)

// GoRuntimeInfo is what InspectGoRuntime found.
type GoRuntimeInfo struct {
	// GoRuntime: the module carries Go's wasip1 runtime (by its function names, or netpoll's throw message when the
	// module has no name section).
	GoRuntime bool
	// Named: the module has a name section, so the fix can be seen; a stripped module cannot be cleared.
	Named bool
	// ImportsPollOneoff: the module imports wasi_snapshot_preview1.poll_oneoff.
	ImportsPollOneoff bool
	// NetpollFixed and UsleepFixed: the fix's functions are in the module.
	NetpollFixed, UsleepFixed bool
}

// InspectGoRuntime looks for the poll_oneoff hazard in a module (see the comment above).
func InspectGoRuntime(module []byte) (GoRuntimeInfo, error) {
	info, err := Inspect(module)
	if err != nil {
		return GoRuntimeInfo{}, err
	}
	g := GoRuntimeInfo{Named: info.named}
	for _, imp := range info.Imports {
		if imp.Kind == ExternFunc && imp.Module == wasiModule && imp.Name == "poll_oneoff" {
			g.ImportsPollOneoff = true
		}
	}
	names := info.runtimeNames
	g.GoRuntime = names[goNetpoll] || names[goUsleep] || (!info.named && bytes.Contains(module, []byte(goPollThrow)))
	g.NetpollFixed, g.UsleepFixed = names[goNetpollMarker], names[goUsleepMarker]
	return g, nil
}

// Hazard reports whether the module can die on a failing poll_oneoff: a Go runtime that calls it and lacks the fix
// (or cannot be shown to have it).
func (g GoRuntimeInfo) Hazard() bool {
	return g.GoRuntime && g.ImportsPollOneoff && !(g.NetpollFixed && g.UsleepFixed)
}

// UnsafeOn lists the Envoy profiles under which a module with the hazard can die: those whose poll_oneoff fails or
// may not run inside the allocator. Nil when the module has no hazard.
func (g GoRuntimeInfo) UnsafeOn() []*EnvoyProfile {
	if !g.Hazard() {
		return nil
	}
	var out []*EnvoyProfile
	for _, p := range envoyProfiles {
		if p.PollOneoffFails() || !p.MayCallDuringAllocator(wasiModule+".poll_oneoff") {
			out = append(out, p)
		}
	}
	return out
}

// readRuntimeNames reads the function-name subsection (id 1) of a name section and keeps the names that start
// with "runtime.".
func readRuntimeNames(s *reader) map[string]bool {
	names := map[string]bool{}
	for s.err == nil && s.off < len(s.b) {
		id := s.byte()
		size := s.u32()
		sub := s.bytes(int(size))
		if s.err != nil || id != 1 {
			continue
		}
		r := &reader{b: sub}
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.u32() // function index
			if name := r.name(); r.err == nil && strings.HasPrefix(name, "runtime.") {
				names[name] = true
			}
		}
	}
	return names
}
