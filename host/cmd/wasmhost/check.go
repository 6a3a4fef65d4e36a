package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	filterconfig "github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

const checkHelp = `
Usage: wasmhost check --wasm F [--envoy 1.33] [--config C] [--load=false]

Prints what a proxy-wasm module needs and offers, and whether Envoy can load it: size, the Proxy-Wasm ABI version it
advertises (its proxy_abi_version_* export), its imports (each marked against Envoy's list of WASI and proxy-wasm
host functions), its exports, and a verdict. A module importing a function Envoy does not provide fails in Envoy with
"Failed to load Wasm module due to a missing import: <module>.<name>"; check reports that before any deployment.

It also looks for the poll_oneoff hazard of Go modules (GOOS=wasip1): a Go runtime that throws when WASI
poll_oneoff fails, which Envoy 1.33 to 1.37 make it do (golang/go#78513); such a module loads, then dies under load.
check says whether the module carries the fix of this repository's build (internal/wasmbuild) and on which Envoy
versions it is unsafe; a module with the hazard is INCOMPATIBLE with those.

With --platform gcp-service-extensions the module and configuration are also weighed against the platform's quota,
a configuration the platform cannot run (affinity) is refused, and the load test runs under the platform's limits.

Unless --load=false, a compatible module is also loaded the way Envoy would load it: compiled, its exports and their
signatures checked, one instance created, proxy_on_vm_start and proxy_on_configure run with the configuration C
(none by default).

Exit status: 0 compatible, 1 incompatible (or it does not load), 2 usage error or unreadable module.

Examples:
  wasmhost check --wasm build/filter.wasm
  wasmhost check --wasm build/filter.wasm --envoy 1.33 --config testdata/config/affinity.json
  wasmhost check --wasm build/filter.wasm --platform gcp-service-extensions --config testdata/config/gms.json
  wasmhost check --wasm some-tinygo-filter.wasm --load=false
`

func runCheck(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", checkHelp)
	wasm := fs.String("wasm", "", "the module (`file`.wasm); required")
	envoy := envoyFlag(fs)
	config := fs.String("config", "", "the plugin configuration for the load test: a JSON `file`, or inline JSON when it starts with '{'")
	load := fs.Bool("load", true, "also load the module in this host (compile, check exports, start one instance)")
	cacheDir := fs.String("cache-dir", "", "keep compiled code in this `directory` for faster runs")
	var platformName string
	platformFlag(fs, &platformName)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if *wasm == "" {
		code, _ := usageError(stderr, fs.Name(), "--wasm is required")
		return code
	}
	profile, code, ok := envoyProfile(stderr, fs, *envoy)
	if !ok {
		return code
	}
	allowed := profile.Imports()
	module, err := readModule(*wasm)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	info, err := host.Inspect(module)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("%s: %w", *wasm, err))
	}
	cfg, err := readConfig(*config)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	// The configuration is parsed here only for what the platform refuses; the load test below shows what the
	// plugin itself says of it.
	var parsed *filterconfig.Config
	if c, err := filterconfig.Parse(cfg, os.LookupEnv); err == nil {
		parsed = c
	}
	platform, err := platformFor(platformName, parsed)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}

	missing := host.CheckCompatibility(info, allowed)
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "module:\t%s\n", *wasm)
	fmt.Fprintf(w, "size:\t%d bytes (%.1f MiB)\n", info.Size, float64(info.Size)/(1<<20))
	abi := info.ABIVersion
	if abi == "" {
		abi = "none (no proxy_abi_version_* export)"
	}
	fmt.Fprintf(w, "abi version:\t%s\n", abi)
	if platform != nil {
		fmt.Fprintf(w, "platform:\t%s\n", platform.Name)
		if q := platform.ModuleQuotaBytes; q > 0 {
			fmt.Fprintf(w, "quota:\t%d of %d bytes with the configuration (%.0f%%)\n", info.Size+len(cfg), q, 100*float64(info.Size+len(cfg))/float64(q))
		}
	}
	w.Flush()

	fmt.Fprintf(stdout, "\nimports (%d):\n", len(info.Imports))
	w = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, imp := range info.Imports {
		status := "ok"
		if slices.Contains(missing, imp.String()) {
			status = "MISSING in Envoy " + *envoy
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", imp.String(), describeExtern(imp.Kind, imp.Type), status)
	}
	w.Flush()

	fmt.Fprintf(stdout, "\nexports (%d):\n", len(info.Exports))
	w = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, ex := range info.Exports {
		fmt.Fprintf(w, "  %s\t%s\n", ex.Name, describeExtern(ex.Kind, ex.Type))
	}
	w.Flush()
	fmt.Fprintln(stdout)

	goRuntime, err := host.InspectGoRuntime(module)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("%s: %w", *wasm, err))
	}
	unsafeHere := printGoRuntime(stdout, goRuntime, profile)
	fmt.Fprintln(stdout)

	switch {
	case len(missing) > 0:
		fmt.Fprintf(stdout, "verdict: INCOMPATIBLE with Envoy %s: %d missing import(s); Envoy would say "+
			"\"Failed to load Wasm module due to a missing import: %s\"\n", *envoy, len(missing), missing[0])
		return exitFailure
	case info.ABIVersion == "":
		fmt.Fprintf(stdout, "verdict: INCOMPATIBLE with Envoy %s: the module advertises no Proxy-Wasm ABI version\n", *envoy)
		return exitFailure
	case unsafeHere:
		fmt.Fprintf(stdout, "verdict: INCOMPATIBLE with Envoy %s: the module loads, but its Go runtime dies when poll_oneoff fails "+
			"(rebuild it with the runtime fix, see README Troubleshooting)\n", *envoy)
		return exitFailure
	}
	if *load {
		log, _ := newLogger(stderr, "warn")
		h, err := newHost(ctx, host.Options{Module: module, PluginConfig: cfg, PoolSize: 1, Envoy: profile.Name,
			CacheDir: *cacheDir, Logger: log, Platform: platform})
		if err != nil {
			fmt.Fprintf(stdout, "verdict: INCOMPATIBLE: the module does not load: %s\n", err)
			return exitFailure
		}
		h.Close(context.Background())
		under := ""
		if platform != nil {
			under = " under " + platform.Name + "'s limits"
		}
		fmt.Fprintf(stdout, "verdict: compatible with Envoy %s (ABI %s); loaded and configured in this host%s\n",
			*envoy, info.ABIVersion, under)
		return exitOK
	}
	fmt.Fprintf(stdout, "verdict: compatible with Envoy %s (ABI %s)\n", *envoy, info.ABIVersion)
	return exitOK
}

// describeExtern renders an import's or export's kind, with the signature for functions.
func describeExtern(kind host.ExternKind, sig host.Signature) string {
	if kind == host.ExternFunc {
		return "func (" + sig.String() + ")"
	}
	return string(kind)
}

// printGoRuntime reports the poll_oneoff hazard and returns whether it makes the module unsafe under profile.
func printGoRuntime(w io.Writer, g host.GoRuntimeInfo, profile *host.EnvoyProfile) bool {
	switch {
	case !g.GoRuntime:
		fmt.Fprintln(w, "go runtime: none found (no poll_oneoff hazard)")
		return false
	case !g.ImportsPollOneoff:
		fmt.Fprintln(w, "go runtime: wasip1, without the poll_oneoff import (no poll_oneoff hazard)")
		return false
	case !g.Hazard():
		fmt.Fprintln(w, "go runtime: wasip1, with the poll_oneoff fix (netpoll and usleep never call it without a file to poll): safe on every supported Envoy")
		return false
	}
	var names []string
	unsafeHere := false
	for _, p := range g.UnsafeOn() {
		names = append(names, p.Releases+" (--envoy "+p.Name+", proxy-wasm-cpp-host "+p.CppHost+")")
		unsafeHere = unsafeHere || p == profile
	}
	why := "it lacks the fix"
	if !g.Named {
		why = "the module has no name section, so the fix cannot be seen"
	}
	fmt.Fprintf(w, "go runtime: wasip1, HAZARD: netpoll and usleep throw when poll_oneoff fails (%s; golang/go#78513)\n", why)
	fmt.Fprintf(w, "  unsafe on: %s\n", strings.Join(names, "; "))
	return unsafeHere
}
