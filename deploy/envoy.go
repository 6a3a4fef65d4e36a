package deploy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	statefulsessionv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/stateful_session/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	headerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/stateful_session/header/v3"
	// Registers DownstreamTlsContext, the listener's transport socket; nothing here reads it.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
)

// Names of the HTTP filters, in the order the chain must have them.
const (
	filterWasm            = "envoy.filters.http.wasm"
	filterStatefulSession = "envoy.filters.http.stateful_session"
	filterRouter          = "envoy.filters.http.router"
	sessionStateHeader    = "envoy.http.stateful_session.header"
)

// wasmRuntimes are the Wasm runtimes Envoy knows; "null" (native plugins compiled into Envoy) cannot load a .wasm.
var wasmRuntimes = []string{"envoy.wasm.runtime.v8", "envoy.wasm.runtime.wamr", "envoy.wasm.runtime.wasmtime"}

// LoadEnvoy decodes an Envoy bootstrap written in YAML the way Envoy reads it — YAML to JSON, then the proto JSON
// mapping into envoy.config.bootstrap.v3.Bootstrap — refusing unknown fields, duplicate keys and typed_configs whose
// type is not known, and then runs the validation rules generated from Envoy's protos (ValidateAll) on the
// bootstrap and on the content of every typed_config, which ValidateAll alone does not look into.
func LoadEnvoy(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("envoy: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, b); err != nil {
		return nil, fmt.Errorf("envoy: %w", protoJSONError(js, err, ""))
	}
	if err := validateTree(b, ""); err != nil {
		return nil, fmt.Errorf("envoy: %w", err)
	}
	return b, nil
}

type allValidator interface{ ValidateAll() error }

// validateTree runs m's ValidateAll and then does the same for the message packed in every Any below m, naming the
// path of the Any that failed.
func validateTree(m proto.Message, path string) error {
	if v, ok := m.(allValidator); ok {
		if err := v.ValidateAll(); err != nil {
			if path == "" {
				return err
			}
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return walkAnys(m.ProtoReflect(), path)
}

func walkAnys(m protoreflect.Message, path string) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		fp := joinPath(path, string(fd.Name()))
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = visit(l.Get(i).Message(), fmt.Sprintf("%s[%d]", fp, i))
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				err = visit(mv.Message(), fmt.Sprintf("%s[%v]", fp, k.Interface()))
				return err == nil
			})
		default:
			err = visit(v.Message(), fp)
		}
		return err == nil
	})
	return err
}

func visit(m protoreflect.Message, path string) error {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		return walkAnys(m, path)
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return validateTree(inner, fmt.Sprintf("%s<%s>", path, inner.ProtoReflect().Descriptor().Name()))
}

func joinPath(p, name string) string {
	if p == "" {
		return name
	}
	return p + "." + name
}

// EnvoyChain is what CheckEnvoy found in one HTTP connection manager.
type EnvoyChain struct {
	// Listener is the listener's name.
	Listener string
	// Filters are the HTTP filters' names, in order.
	Filters []string
	// Plugin is the Wasm filter's plugin configuration.
	Plugin *wasmv3.PluginConfig
	// ConfigJSON is the filter configuration carried in Plugin.configuration.
	ConfigJSON string
	// Config is ConfigJSON as the filter's parser reads it inside the VM.
	Config *config.Config
	// SessionHeader is the header envoy.http.stateful_session.header reads, or "" without that filter.
	SessionHeader string
}

// CheckEnvoy checks the parts of a bootstrap that Envoy's schema cannot: in every HTTP connection manager with
// the chips filter, the filters are exactly wasm, stateful_session and router in that order; the Wasm plugin has
// a runtime, a module and an explicit failure policy; its configuration is accepted by the filter's parser with
// the environment Envoy gives the VM (hostEnv stands for Envoy's own environment); affinity and the stateful
// session filter agree on the routing header; and every route names a defined cluster.
func CheckEnvoy(b *bootstrapv3.Bootstrap, hostEnv func(string) (string, bool)) ([]EnvoyChain, error) {
	clusters := map[string]bool{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = true
	}
	var chains []EnvoyChain
	for _, l := range b.GetStaticResources().GetListeners() {
		for i, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				hcm, ok, err := unpack[*hcmv3.HttpConnectionManager](f.GetTypedConfig())
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
				where := fmt.Sprintf("envoy: listener %q filter chain %d", l.GetName(), i)
				if err := checkRoutes(hcm.GetRouteConfig(), clusters); err != nil {
					return nil, fmt.Errorf("%s: %w", where, err)
				}
				ch, err := checkHTTPFilters(l, hcm, hostEnv)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", where, err)
				}
				if ch != nil {
					chains = append(chains, *ch)
				}
			}
		}
	}
	if len(chains) == 0 {
		return nil, errors.New("envoy: no HTTP connection manager runs the chips Wasm filter")
	}
	return chains, nil
}

// unpack returns the message in a if it has type T.
func unpack[T proto.Message](a *anypb.Any) (T, bool, error) {
	var zero T
	if !isType[T](a) {
		return zero, false, nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return zero, false, err
	}
	return m.(T), true, nil
}

func filterNames(fs []*hcmv3.HttpFilter) []string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.GetName()
	}
	return names
}

func checkHTTPFilters(l *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager, hostEnv func(string) (string, bool)) (*EnvoyChain, error) {
	fs := hcm.GetHttpFilters()
	names := filterNames(fs)
	if !slices.ContainsFunc(fs, func(f *hcmv3.HttpFilter) bool { return isType[*wasmfilterv3.Wasm](f.GetTypedConfig()) }) {
		return nil, nil // another listener; not ours to judge
	}
	order := fmt.Errorf("http_filters must be [%s %s %s] in this order (or [%s %s] with affinity off): responses pass the filters in reverse, so wasm must come before stateful_session to remove the routing header it adds, and before it on requests to drop the one a client sends; got %v",
		filterWasm, filterStatefulSession, filterRouter, filterWasm, filterRouter, names)
	if len(fs) < 2 || len(fs) > 3 {
		return nil, order
	}
	for i, f := range fs {
		var want string
		var ok bool
		switch {
		case i == 0:
			want, ok = filterWasm, isType[*wasmfilterv3.Wasm](f.GetTypedConfig())
		case i == len(fs)-1:
			want, ok = filterRouter, isType[*routerv3.Router](f.GetTypedConfig())
		default:
			want, ok = filterStatefulSession, isType[*statefulsessionv3.StatefulSession](f.GetTypedConfig())
		}
		if !ok || f.GetName() != want {
			return nil, order
		}
	}
	wasm, _, err := unpack[*wasmfilterv3.Wasm](fs[0].GetTypedConfig())
	if err != nil {
		return nil, err
	}
	ch := &EnvoyChain{Listener: l.GetName(), Filters: names, Plugin: wasm.GetConfig()}
	if err := checkPlugin(ch, hostEnv); err != nil {
		return nil, fmt.Errorf("%s: %w", filterWasm, err)
	}
	if len(fs) == 2 {
		if ch.Config.Affinity.Enabled {
			return nil, fmt.Errorf("%s: affinity is on but there is no %s between it and the router to route by %s", filterWasm, filterStatefulSession, ch.Config.Affinity.RoutingHeader)
		}
		return ch, nil
	}
	session, _, err := unpack[*statefulsessionv3.StatefulSession](fs[1].GetTypedConfig())
	if err != nil {
		return nil, err
	}
	if err := checkSession(ch, session); err != nil {
		return nil, fmt.Errorf("%s: %w", filterStatefulSession, err)
	}
	return ch, nil
}

// isType reports whether a holds a message of type T.
func isType[T proto.Message](a *anypb.Any) bool {
	var zero T
	return a != nil && a.MessageName() == zero.ProtoReflect().Descriptor().FullName()
}

func checkPlugin(ch *EnvoyChain, hostEnv func(string) (string, bool)) error {
	p := ch.Plugin
	if p == nil {
		return errors.New("config: missing")
	}
	if p.GetFailOpen() {
		return errors.New("config.fail_open is deprecated; set config.failure_policy instead")
	}
	if p.GetFailurePolicy() == wasmv3.FailurePolicy_UNSPECIFIED {
		return errors.New("config.failure_policy is not set; choose FAIL_RELOAD, FAIL_CLOSED or FAIL_OPEN deliberately")
	}
	vm := p.GetVmConfig()
	if vm == nil {
		return errors.New("config.vm_config: missing (the plugin needs a VM with the module)")
	}
	if !slices.Contains(wasmRuntimes, vm.GetRuntime()) {
		return fmt.Errorf("config.vm_config.runtime: want one of %v, got %q", wasmRuntimes, vm.GetRuntime())
	}
	code := vm.GetCode()
	switch {
	case code.GetLocal().GetFilename() != "":
	case code.GetRemote().GetHttpUri().GetUri() != "" && code.GetRemote().GetSha256() != "":
	default:
		return errors.New("config.vm_config.code: no module; set local.filename to the .wasm file (or remote.http_uri with its sha256)")
	}
	if a := p.GetConfiguration(); a != nil {
		sv, ok, err := unpack[*wrapperspb.StringValue](a)
		if err != nil || !ok {
			return fmt.Errorf("config.configuration: want a google.protobuf.StringValue holding the JSON configuration, got %s", a.GetTypeUrl())
		}
		ch.ConfigJSON = sv.GetValue()
	}
	env := vmEnv{
		fromHost: vm.GetEnvironmentVariables().GetHostEnvKeys(),
		literal:  vm.GetEnvironmentVariables().GetKeyValues(),
		host:     hostEnv,
	}
	c, err := parseFilterConfig([]byte(ch.ConfigJSON), env)
	if err != nil {
		return fmt.Errorf("config.configuration: %w", err)
	}
	ch.Config = c
	if c.Affinity.Enabled && p.GetFailurePolicy() == wasmv3.FailurePolicy_FAIL_OPEN {
		return fmt.Errorf("config.failure_policy: FAIL_OPEN with affinity on would let a failed filter pass client-sent %s headers to stateful_session and leak upstream addresses in responses; use FAIL_RELOAD or FAIL_CLOSED", c.Affinity.RoutingHeader)
	}
	if c.Affinity.Enabled && !slices.Contains(env.fromHost, c.Affinity.KeysEnv) {
		return fmt.Errorf("config.vm_config.environment_variables: the keys variable %s should come from Envoy's environment (host_env_keys), not from key_values in this file", c.Affinity.KeysEnv)
	}
	return nil
}

func checkSession(ch *EnvoyChain, s *statefulsessionv3.StatefulSession) error {
	st := s.GetSessionState()
	if st.GetName() != sessionStateHeader {
		return fmt.Errorf("session_state.name: want %s (the filter turns its cookie into a request header), got %q", sessionStateHeader, st.GetName())
	}
	h, ok, err := unpack[*headerv3.HeaderBasedSessionState](st.GetTypedConfig())
	if err != nil || !ok {
		return fmt.Errorf("session_state.typed_config: want %s, got %s", (&headerv3.HeaderBasedSessionState{}).ProtoReflect().Descriptor().FullName(), st.GetTypedConfig().GetTypeUrl())
	}
	ch.SessionHeader = strings.ToLower(h.GetName())
	a := ch.Config.Affinity
	if !a.Enabled {
		return fmt.Errorf("the chips filter has affinity off, so nothing removes client-sent %s headers: clients could pick their upstream; turn affinity on or remove this filter", ch.SessionHeader)
	}
	if ch.SessionHeader != a.RoutingHeader {
		return fmt.Errorf("session_state header %q differs from the filter's affinity.routing_header %q", h.GetName(), a.RoutingHeader)
	}
	return nil
}

func checkRoutes(rc *routev3.RouteConfiguration, clusters map[string]bool) error {
	for _, vh := range rc.GetVirtualHosts() {
		for i, r := range vh.GetRoutes() {
			c := r.GetRoute().GetCluster()
			if c != "" && !clusters[c] {
				return fmt.Errorf("virtual host %q route %d: cluster %q is not defined in static_resources.clusters", vh.GetName(), i, c)
			}
		}
	}
	return nil
}
