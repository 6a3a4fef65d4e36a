package host

import "fmt"

// Restricted callbacks, after proxy-wasm-cpp-host: while it runs the module's _initialize and main (WasmBase::startVm,
// src/wasm.cc) and while it runs the module's allocator for a host function (WasmBase::allocMemory,
// include/proxy-wasm/wasm.h), only the imports its profile lists may be called; any other import traps the VM with
// "restricted_callback" (src/v8/v8.cc), and the callback that was running fails.

// restriction is the set of imports allowed while one of those runs, and what runs.
type restriction struct {
	allowed map[string]bool
	during  string
}

// restrictedCallbackError is the trap of a forbidden call.
type restrictedCallbackError struct {
	imp, during, cppHost string
}

func (e restrictedCallbackError) Error() string {
	return fmt.Sprintf("restricted_callback: %s called during %s (not allowed there by proxy-wasm-cpp-host %s)", e.imp, e.during, e.cppHost)
}

// checkRestricted traps, as a panic that wazero turns into the error of the running guest call, when imp
// ("module.name") may not run now.
func (inst *instance) checkRestricted(imp string) {
	if r := inst.restrict; r != nil && !r.allowed[imp] {
		panic(restrictedCallbackError{imp: imp, during: r.during, cppHost: inst.h.profile.CppHost})
	}
}

// allocatorName is the export cpp-host calls as the module's allocator: malloc when exported, else
// proxy_on_memory_allocate.
func allocatorName(info ModuleInfo) string {
	if _, ok := info.Export("malloc"); ok {
		return "malloc"
	}
	return "proxy_on_memory_allocate"
}
