package host

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Platform describes a proxy that embeds proxy-wasm under rules stricter than Envoy's: host functions it refuses,
// the properties it provides, the memory of one VM, the CPU one callback may use and the streams one VM must carry.
// Options.Platform nil is plain Envoy. A Platform changes what the host answers, never what the module must import:
// the import list stays Options.AllowedImports, because the platforms known here load modules through
// proxy-wasm-cpp-host as Envoy does.
type Platform struct {
	// Name is the platform's name on the command line, e.g. "gcp-service-extensions".
	Name string
	// Refused are host functions ("proxy_define_metric", …) that answer Unimplemented without acting, as
	// proxy-wasm-cpp-host's ContextBase does for everything its embedder does not override.
	Refused []string
	// Properties, when not nil, are the only property paths (dot-separated, e.g. "request.path") that get_property
	// answers, each with whatever lies below it; every other path is NotFound.
	Properties []string
	// MemoryLimitBytes, when positive, caps each instance's linear memory: memory.grow past it fails, which a Go
	// guest reports as out of memory and a trap. A module whose initial memory is larger does not start.
	MemoryLimitBytes uint64
	// CallbackCPU, when positive, is the CPU time (not wall time) one HTTP callback — request or response headers
	// or body — may use. A callback that used more fails the plugin: the platform terminates it.
	CallbackCPU time.Duration
	// StreamsPerInstance, when positive, is how many streams one instance must carry at once; the host then bounds
	// the open streams at this many per instance (Options.MaxStreams, unless set).
	StreamsPerInstance int
	// RoutesItself marks a proxy that picks upstreams by its own rules: no stateful session routes by a header the
	// plugin sets, and the plugin cannot learn which upstream answered (upstream.address is not provided). A plugin
	// that pins clients to upstreams cannot work there; see CheckAffinity.
	RoutesItself bool
	// ModuleQuotaBytes, when positive, is the most the module and its plugin configuration may weigh together;
	// the platform refuses to create a plugin version above it, and New refuses to start.
	ModuleQuotaBytes int
	// FailStatus is the HTTP status a stream gets when the plugin fails and the failure policy closes the stream
	// (Envoy: 503).
	FailStatus int
}

// GCPServiceExtensions is Google Cloud Service Extensions' plugin runtime (Application Load Balancer and Media CDN
// plugins), from its published limits (cloud.google.com/service-extensions/docs/plugins-overview and
// plugin-best-practices, read 2026-11) and its plugin tester (GoogleCloudPlatform/service-extensions
// plugins/test/framework.{h,cc} at e9fcee7, whose context answers from proxy-wasm-cpp-host's ContextBase):
//
//   - no timers, custom metrics, shared data, shared queues or outbound calls: those host functions answer
//     Unimplemented (ContextBase::unimplemented at proxy-wasm-cpp-host 52a0291);
//   - properties only as the load balancer forwards them (the extension's forwardAttributes): the request
//     attributes documented in cloud.google.com/service-extensions/docs/attributes; nothing about the upstream,
//     so upstream.address is NotFound;
//   - 16 MiB of memory per VM, which must carry up to 1,000 concurrent streams;
//   - 1 ms of CPU per callback ("normalized vCPU", about a 4 GHz processor; this host measures its own CPU as it
//     is, so a slower machine is stricter than the platform);
//   - the module and its configuration together within 5 MiB (the figure the project plans with; an older copy
//     of cloud.google.com/service-extensions/docs/quotas says 2 MiB, see RATIONALE.md);
//   - a plugin that exceeds a limit is terminated and the request answered with HTTP 500.
var GCPServiceExtensions = Platform{
	Name: "gcp-service-extensions",
	Refused: []string{
		"proxy_set_tick_period_milliseconds",
		"proxy_define_metric", "proxy_increment_metric", "proxy_record_metric", "proxy_get_metric",
		"proxy_get_shared_data", "proxy_set_shared_data",
		"proxy_register_shared_queue", "proxy_resolve_shared_queue", "proxy_enqueue_shared_queue", "proxy_dequeue_shared_queue",
		"proxy_http_call", "proxy_grpc_call", "proxy_grpc_stream", "proxy_grpc_send", "proxy_grpc_cancel", "proxy_grpc_close",
		"proxy_call_foreign_function",
	},
	Properties: []string{
		"request.method", "request.host", "request.path", "request.query", "request.scheme", "request.origin",
		"request.backend_service_name",
	},
	MemoryLimitBytes:   16 << 20,
	CallbackCPU:        time.Millisecond,
	StreamsPerInstance: 1000,
	RoutesItself:       true,
	ModuleQuotaBytes:   5 << 20,
	FailStatus:         500,
}

// Platforms are the platforms PlatformByName knows, by name.
var Platforms = map[string]*Platform{GCPServiceExtensions.Name: &GCPServiceExtensions}

// PlatformByName returns the named platform; "" and "envoy" mean plain Envoy (nil).
func PlatformByName(name string) (*Platform, error) {
	if name == "" || name == "envoy" {
		return nil, nil
	}
	if p, ok := Platforms[name]; ok {
		return p, nil
	}
	names := []string{"envoy"}
	for n := range Platforms {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("wasmhost: platform: want one of %s, got %q", strings.Join(names, ", "), name)
}

// CheckAffinity refuses, at configuration time, a filter configuration with affinity on for a platform that routes
// by itself: there the sealed cookie could never pin a backend, and the filter would issue cookies that mean nothing.
func (p *Platform) CheckAffinity(affinityEnabled bool) error {
	if p == nil || !p.RoutesItself || !affinityEnabled {
		return nil
	}
	return fmt.Errorf("wasmhost: platform %s: config: affinity.enabled: the load balancer routes requests itself, "+
		"so the filter cannot pin a client to a backend (no stateful session reads its routing header, no "+
		"upstream.address tells it who answered); turn affinity off and use the load balancer's own session affinity", p.Name)
}

// CheckSize refuses a module and configuration that weigh more than the platform's quota.
func (p *Platform) CheckSize(module, config int) error {
	if p == nil || p.ModuleQuotaBytes <= 0 || module+config <= p.ModuleQuotaBytes {
		return nil
	}
	return fmt.Errorf("wasmhost: platform %s: the module (%d bytes) and its configuration (%d bytes) weigh %d bytes, over the quota of %d",
		p.Name, module, config, module+config, p.ModuleQuotaBytes)
}

// check refuses a platform whose rules this host cannot apply.
func (p *Platform) check() error {
	for _, name := range p.Refused {
		if !slices.ContainsFunc(hostFunctions, func(f hostFunc) bool { return f.name == name }) {
			return fmt.Errorf("wasmhost: platform %s: refuses %q, which is not a host function", p.Name, name)
		}
	}
	if p.MemoryLimitBytes%wasmPageSize != 0 || p.MemoryLimitBytes > maxMemoryPages*wasmPageSize {
		return fmt.Errorf("wasmhost: platform %s: memory limit %d is not a whole number of 64 KiB pages up to 1 GiB", p.Name, p.MemoryLimitBytes)
	}
	if p.CallbackCPU > 0 && !cpuClockAvailable() {
		return errors.New("wasmhost: platform " + p.Name + ": its CPU budget per callback needs a per-thread CPU clock, which this system does not provide")
	}
	return nil
}

const wasmPageSize = 65536

// memoryLimitPages is the runtime's memory cap for p (nil: proxy-wasm-cpp-host's 1 GiB).
func (p *Platform) memoryLimitPages() uint32 {
	if p == nil || p.MemoryLimitBytes == 0 {
		return maxMemoryPages
	}
	return uint32(p.MemoryLimitBytes / wasmPageSize)
}

// hostcall is the implementation registered for f: f's own, or hostUnimplemented when p refuses it.
func (p *Platform) hostcall(f hostFunc) hostcall {
	if p.refuses(f.name) {
		return hostUnimplemented
	}
	return f.fn
}

// refuses reports whether p refuses the host function name.
func (p *Platform) refuses(name string) bool {
	return p != nil && slices.Contains(p.Refused, name)
}

// propertyAllowed reports whether p provides the property at path (NUL-separated segments, as the ABI passes
// it): the path is one of p.Properties or lies below one.
func (p *Platform) propertyAllowed(path []byte) bool {
	if p == nil || p.Properties == nil {
		return true
	}
	dotted := strings.ReplaceAll(string(path), "\x00", ".")
	for _, allowed := range p.Properties {
		if dotted == allowed || strings.HasPrefix(dotted, allowed+".") {
			return true
		}
	}
	return false
}

// failStatus is the status of the failure policy's local answer.
func (p *Platform) failStatus() int {
	if p == nil || p.FailStatus == 0 {
		return 503
	}
	return p.FailStatus
}

// metered reports whether ph is an HTTP callback, the unit the platform's CPU budget applies to.
func (ph phase) metered() bool {
	switch ph {
	case phaseRequestHeaders, phaseRequestBody, phaseResponseHeaders, phaseResponseBody:
		return true
	}
	return false
}
