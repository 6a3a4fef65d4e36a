package host

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
)

// EnvoyProfile is the Wasm host of a range of Envoy releases, as the proxy-wasm-cpp-host commit they pin builds it:
// which WASI functions exist and what each answers, which imports a module may call while the host runs its
// _initialize (or main) and while it runs its allocator, and so which modules load at all. A host that is kinder
// than the Envoy a plugin will meet hides exactly the failures that matter, so every Host runs under one profile,
// the strictest by default.
type EnvoyProfile struct {
	// Name selects the profile (--envoy): the first Envoy release of its range, or the cpp-host commit when no
	// release is known to pin it.
	Name string
	// Releases says which Envoy (and Istio) releases the profile stands for.
	Releases string
	// CppHost is the proxy-wasm-cpp-host commit whose src/exports.cc, src/wasm.cc and include/proxy-wasm/wasm.h
	// the profile follows.
	CppHost string

	wasi            []wasiFunc      // the wasi_snapshot_preview1 functions, in cpp-host's registration order
	initAllowed     map[string]bool // imports callable during _initialize and main (WasmBase::startVm)
	allocAllowed    map[string]bool // imports callable during the allocator (WasmBase::allocMemory)
	pollReportsNone bool            // poll_oneoff writes nevents = 0 and succeeds, rather than answering ENOSYS
	callsMainVoid   bool            // startVm calls __main_void after _initialize when main is not exported (e55d150)
}

// The Envoy profiles. cpp-host c4d7bb0 ("add wasi hostcalls used by the Go SDK", PR 427) is what Envoy 1.33 pins,
// and its WASI answers and call restrictions are unchanged in what the 1.33 to 1.37 lines ship (Istio 1.25 to
// 1.29). cpp-host 94091cd (PR 533, April 2026) added the rest of WASI preview 1, made poll_oneoff succeed and
// allowed it during the allocator; an Envoy runs it only if its bazel/repository_locations.bzl pins that commit or
// a later one, which no release was known to do when this was written (Envoy's update was still a draft, PR 44534),
// so that profile is selected by the commit.
var (
	envoy133 = &EnvoyProfile{
		Name:         "1.33",
		Releases:     "Envoy 1.33 to 1.37 (Istio 1.25 to 1.29)",
		CppHost:      "c4d7bb0",
		wasi:         wasiC4d7bb0,
		initAllowed:  allowSet(initAllowedC4d7bb0),
		allocAllowed: allowSet(allocAllowedC4d7bb0),
	}
	envoy138 = &EnvoyProfile{
		Name:            "94091cd",
		Releases:        "an Envoy built with proxy-wasm-cpp-host 94091cd or later",
		CppHost:         "94091cd",
		wasi:            wasi94091cd,
		initAllowed:     allowSet(initAllowed94091cd),
		allocAllowed:    allowSet(append(slices.Clone(allocAllowedC4d7bb0), "poll_oneoff")),
		pollReportsNone: true,
		callsMainVoid:   true,
	}
	envoyProfiles = []*EnvoyProfile{envoy133, envoy138}
	// envoyAliases are the releases that run a profile without naming it.
	envoyAliases = map[string]*EnvoyProfile{"1.34": envoy133, "1.35": envoy133, "1.36": envoy133, "1.37": envoy133}
)

// DefaultEnvoy is the profile a Host runs when none is chosen: the strictest supported one.
const DefaultEnvoy = "1.33"

// SupportedEnvoyVersions lists the versions EnvoyProfileFor accepts, in order.
func SupportedEnvoyVersions() []string {
	var out []string
	for _, p := range envoyProfiles {
		out = append(out, p.Name)
	}
	out = append(out, sortedKeys(envoyAliases)...)
	slices.Sort(out)
	return out
}

// EnvoyProfileFor returns the profile of an Envoy version ("1.33", "v1.35.2"; "" is DefaultEnvoy). Unknown
// versions are an error listing the supported ones.
func EnvoyProfileFor(version string) (*EnvoyProfile, error) {
	v := strings.TrimPrefix(strings.TrimSpace(version), "v")
	if v == "" {
		v = DefaultEnvoy
	}
	if parts := strings.Split(v, "."); len(parts) == 3 {
		v = parts[0] + "." + parts[1] // a patch release runs its minor's Wasm host
	}
	for _, p := range envoyProfiles {
		if p.Name == v {
			return p, nil
		}
	}
	if p, ok := envoyAliases[v]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("wasmhost: envoy: unsupported version %q (supported: %s)", version, strings.Join(SupportedEnvoyVersions(), ", "))
}

// Imports returns the imports ("module.name") a module may use and still load under this profile: the env
// functions of envoy-env-imports.txt and the profile's WASI functions.
func (p *EnvoyProfile) Imports() []string {
	out := parseImportList(envEnvoyImports)
	for _, f := range p.wasi {
		out = append(out, wasiModule+"."+f.name)
	}
	return out
}

// String names the profile as --envoy does, with its cpp-host commit.
func (p *EnvoyProfile) String() string {
	if p.Name == p.CppHost {
		return "proxy-wasm-cpp-host " + p.CppHost
	}
	return fmt.Sprintf("Envoy %s (proxy-wasm-cpp-host %s)", p.Name, p.CppHost)
}

// PollOneoffFails reports whether poll_oneoff answers ENOSYS under this profile, which kills a Go guest whose
// runtime reaches it (golang/go#78513).
func (p *EnvoyProfile) PollOneoffFails() bool { return !p.pollReportsNone }

// MayCallDuringAllocator reports whether the import ("module.name") may run inside the host's call to the
// module's allocator.
func (p *EnvoyProfile) MayCallDuringAllocator(imp string) bool { return p.allocAllowed[imp] }

//go:embed envoy-env-imports.txt
var envEnvoyImports string

// EnvoyImports returns the imports ("module.name") a module may use and still load in the given Envoy version
// (see EnvoyProfileFor).
func EnvoyImports(version string) ([]string, error) {
	p, err := EnvoyProfileFor(version)
	if err != nil {
		return nil, err
	}
	return p.Imports(), nil
}

// The restricted callbacks of cpp-host: while its startVm runs _initialize and main, and while its allocMemory runs
// the module's malloc, a call to any import outside these lists traps the VM ("restricted_callback", src/v8/v8.cc).
// cpp-host lists both the wasi_unstable and the wasi_snapshot_preview1 names; this host offers only the second.
var (
	// src/wasm.cc WasmBase::startVm at c4d7bb0.
	initAllowedC4d7bb0 = []string{"env.proxy_log", "fd_write", "args_sizes_get", "args_get", "environ_sizes_get",
		"environ_get", "fd_prestat_get", "fd_prestat_dir_name", "clock_time_get", "random_get", "fd_fdstat_get",
		"fd_fdstat_set_flags"}
	// src/wasm.cc WasmBase::startVm at 94091cd: emscripten's memory-growth notice, clock_res_get, poll_oneoff and
	// every file and socket function join the list.
	initAllowed94091cd = []string{"env.emscripten_notify_memory_growth", "env.proxy_log", "fd_write",
		"args_sizes_get", "args_get", "environ_sizes_get", "environ_get", "clock_time_get", "clock_res_get",
		"random_get", "poll_oneoff", "fd_fdstat_get", "fd_fdstat_set_flags", "fd_advise", "fd_allocate",
		"fd_datasync", "fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size", "fd_filestat_set_times",
		"fd_pread", "fd_prestat_dir_name", "fd_prestat_get", "fd_pwrite", "fd_readdir", "fd_renumber", "fd_sync",
		"fd_tell", "path_create_directory", "path_filestat_get", "path_filestat_set_times", "path_link",
		"path_readlink", "path_remove_directory", "path_rename", "path_symlink", "path_unlink_file", "sock_accept",
		"sock_recv", "sock_send", "sock_shutdown"}
	// include/proxy-wasm/wasm.h WasmBase::allocMemory at c4d7bb0; 94091cd adds poll_oneoff ("go runtime gc sleep").
	allocAllowedC4d7bb0 = []string{"env.proxy_log", "fd_write", "clock_time_get"}
)

// allowSet turns a list of names into a set of "module.name" keys; bare names are WASI functions.
func allowSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if !strings.Contains(n, ".") {
			n = wasiModule + "." + n
		}
		set[n] = true
	}
	return set
}
