package host

import (
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"
)

// Options configure a Host. Only Module is required.
type Options struct {
	// Module is the .wasm binary: a Go (wasip1, -buildmode=c-shared) or other Proxy-Wasm 0.2.x module.
	Module []byte
	// PluginConfig is the plugin configuration, read by the plugin in proxy_on_configure (Envoy's
	// "configuration", Istio's pluginConfig as JSON text).
	PluginConfig []byte
	// VMConfig is the VM configuration, read in proxy_on_vm_start (Envoy's vm_config.configuration).
	VMConfig []byte
	// PluginName is the plugin_name property (Envoy's plugin "name"); default "chips".
	PluginName string
	// RootID is the plugin_root_id property (Envoy's root_id); default "".
	RootID string
	// VMID is the plugin_vm_id property (Envoy's vm_config.vm_id); default "".
	VMID string
	// NodeID is the node id of the xds.node property (Envoy's bootstrap node.id). Envoy 1.33 removed the old
	// top-level "node" property, so plugins read it as xds.node.id.
	NodeID string
	// ClusterName and RouteName are the xds.cluster_name and xds.route_name properties of every stream; empty means
	// the property is not found, as for a stream without a routed cluster or without a named route.
	ClusterName string
	RouteName   string
	// Env is the guest's WASI environment (Envoy's vm_config.environment_variables, Istio's vmConfig.env).
	Env map[string]string
	// PoolSize is the number of instances (VMs), like Envoy's one VM per worker thread; default
	// runtime.GOMAXPROCS(0). New creates them all. Each instance carries any number of streams at once, as an
	// Envoy VM holds one context per stream: a stream is pinned to the instance with the fewest open streams and
	// holds it only while one of its callbacks runs, so long-polls that stay open for half a minute do not limit
	// how many streams go through the plugin. PoolSize bounds the plugin calls running in parallel.
	PoolSize int
	// MaxStreams, when positive, bounds the streams open at once across all instances: NewStream then waits for
	// one to close. 0, the default, sets no bound, as in Envoy.
	MaxStreams int
	// CacheDir, when set, keeps wazero's compiled code on disk so that a later New with the same module starts fast.
	CacheDir string
	// FailurePolicy decides what a stream gets when the plugin fails (trap, panic, exit) in a callback.
	FailurePolicy FailurePolicy
	// Envoy is the Envoy version whose Wasm host this host behaves as (see EnvoyProfileFor): its WASI answers, its
	// restricted callbacks and its import list. Default DefaultEnvoy, the strictest supported.
	Envoy string
	// AllowedImports lists the imports ("module.name") a module may use; default the Envoy profile's list, so that
	// a module that would not load in Envoy does not load here either.
	AllowedImports []string
	// Logger receives the plugin's proxy_log messages, its stdout and stderr, and the host's own reports;
	// default slog.Default(). Its enabled level is also what proxy_get_log_level answers.
	Logger *slog.Logger
	// Platform, when set, applies a proxy's stricter rules (refused host functions, properties, memory, CPU per
	// callback, streams per VM) on top of Envoy's; see GCPServiceExtensions. Nil is plain Envoy.
	Platform *Platform
	// Now is the wall clock behind WASI clock_time_get(REALTIME), proxy_get_current_time_nanoseconds and
	// request.time; default time.Now. The monotonic clock always follows the real one.
	Now func() time.Time

	profile *EnvoyProfile // Envoy, resolved by withDefaults
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Module) == 0 {
		return o, fmt.Errorf("wasmhost: options: Module is empty")
	}
	if o.PluginName == "" {
		o.PluginName = "chips"
	}
	if o.PoolSize < 0 {
		return o, fmt.Errorf("wasmhost: options: PoolSize %d is negative", o.PoolSize)
	}
	if o.PoolSize == 0 {
		o.PoolSize = runtime.GOMAXPROCS(0)
	}
	if o.MaxStreams < 0 {
		return o, fmt.Errorf("wasmhost: options: MaxStreams %d is negative", o.MaxStreams)
	}
	switch o.FailurePolicy {
	case FailClosed, FailOpen, FailReload:
	default:
		return o, fmt.Errorf("wasmhost: options: unknown FailurePolicy %d", int(o.FailurePolicy))
	}
	for k, v := range o.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return o, fmt.Errorf("wasmhost: options: Env: invalid variable %q (names must be non-empty, without '=' or NUL)", k)
		}
	}
	if o.Platform != nil {
		if err := o.Platform.check(); err != nil {
			return o, err
		}
		if err := o.Platform.CheckSize(len(o.Module), len(o.PluginConfig)); err != nil {
			return o, err
		}
		if o.MaxStreams == 0 && o.Platform.StreamsPerInstance > 0 {
			o.MaxStreams = o.Platform.StreamsPerInstance * o.PoolSize
		}
	}
	profile, err := EnvoyProfileFor(o.Envoy)
	if err != nil {
		return o, err
	}
	o.profile = profile
	if o.AllowedImports == nil {
		o.AllowedImports = profile.Imports()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// FailurePolicy is what a stream gets when the plugin fails in one of its callbacks, after Envoy's failure_policy
// (Istio's failStrategy). Whatever the policy, the failed instance is closed and never serves another stream, a
// fresh one takes its place in the pool, and the failure is logged and counted in Stats. The policy's answer goes
// to the stream whose callback failed and to every other stream pinned to the failed instance, at its next
// callback: their contexts died with the instance.
type FailurePolicy int

// The failure policies.
const (
	// FailClosed answers the stream with a local 503 (Envoy's FAIL_CLOSED, its default): the request is not
	// forwarded, or the upstream response is replaced.
	FailClosed FailurePolicy = iota
	// FailOpen lets the stream continue as if the plugin were absent (Envoy's FAIL_OPEN): the headers are the
	// ones from before the failing callback, and later callbacks of the stream are skipped.
	FailOpen
	// FailReload answers the failing stream with a 503 and has a new instance serve the next one (Envoy's
	// FAIL_RELOAD).
	FailReload
)

// String returns the name ParseFailurePolicy accepts.
func (p FailurePolicy) String() string {
	switch p {
	case FailClosed:
		return "closed"
	case FailOpen:
		return "open"
	case FailReload:
		return "reload"
	}
	return fmt.Sprintf("FailurePolicy(%d)", int(p))
}

// ParseFailurePolicy reads "closed", "open" or "reload", or Envoy's spelling (FAIL_CLOSED, FAIL_OPEN, FAIL_RELOAD),
// in any case.
func ParseFailurePolicy(s string) (FailurePolicy, error) {
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "fail_") {
	case "closed":
		return FailClosed, nil
	case "open":
		return FailOpen, nil
	case "reload":
		return FailReload, nil
	}
	return FailClosed, fmt.Errorf("wasmhost: failure policy: want closed, open or reload, got %q", s)
}
