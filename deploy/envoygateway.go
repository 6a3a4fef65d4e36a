package deploy

import (
	"errors"
	"fmt"
	"slices"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
)

// envoyGatewayController is the controllerName of Envoy Gateway's GatewayClasses.
const envoyGatewayController = "gateway.envoyproxy.io/gatewayclass-controller"

// EnvoyGatewayCheck is what CheckEnvoyGateway learned about the chips filter in one EnvoyExtensionPolicy.
type EnvoyGatewayCheck struct {
	Policy Object
	// Wasm is the policy's entry for the filter.
	Wasm *egv1a1.Wasm
	// ConfigJSON is the filter configuration Envoy Gateway hands to Envoy (the wasm entry's config, as JSON).
	ConfigJSON string
	// Config is ConfigJSON as the filter's parser reads it in the VM.
	Config *config.Config
	// Routes are the HTTPRoutes the filter runs on: the policy's targets, or every route of a targeted Gateway.
	Routes []*gwapiv1.HTTPRoute
	// Proxy is the EnvoyProxy of the Gateways those routes attach to.
	Proxy *egv1a1.EnvoyProxy
	// Filters is the HTTP filter chain Envoy Gateway builds for those routes, as filter types in order.
	Filters []egv1a1.EnvoyFilter
}

// envoyGatewaySet sorts decoded objects by kind.
type envoyGatewaySet struct {
	classes  []*gwapiv1.GatewayClass
	gateways []*gwapiv1.Gateway
	routes   []*gwapiv1.HTTPRoute
	proxies  []*egv1a1.EnvoyProxy
	policies []Object
	services []*corev1.Service
}

// CheckEnvoyGateway checks Envoy Gateway manifests against each other and against what the filter needs, beyond
// what the schemas say: every EnvoyExtensionPolicy running the filter pulls a verified image, never fails open,
// takes the affinity keys from the Envoy container's environment (env.hostKeys, filled from a Secret by the
// EnvoyProxy) and carries a configuration the filter's parser accepts; with affinity on, the routes it runs on
// have header-based session persistence on the filter's routing header, and the EnvoyProxy's filterOrder puts the
// wasm filter before the stateful session filter; and the routes, Gateways, GatewayClasses and Services refer to
// each other correctly. proxyEnv stands for the Envoy container's environment.
func CheckEnvoyGateway(objs []Object, proxyEnv func(string) (string, bool)) ([]EnvoyGatewayCheck, error) {
	var set envoyGatewaySet
	for _, o := range objs {
		switch v := o.Value.(type) {
		case *gwapiv1.GatewayClass:
			set.classes = append(set.classes, v)
		case *gwapiv1.Gateway:
			set.gateways = append(set.gateways, v)
		case *gwapiv1.HTTPRoute:
			set.routes = append(set.routes, v)
		case *egv1a1.EnvoyProxy:
			set.proxies = append(set.proxies, v)
		case *egv1a1.EnvoyExtensionPolicy:
			set.policies = append(set.policies, o)
		case *corev1.Service:
			set.services = append(set.services, v)
		default:
			return nil, fmt.Errorf("envoy-gateway: %s: not a kind the Envoy Gateway deployment uses", o)
		}
	}
	for _, r := range set.routes {
		if err := set.checkRoute(r); err != nil {
			return nil, fmt.Errorf("envoy-gateway: HTTPRoute %s/%s: %w", r.Namespace, r.Name, err)
		}
	}
	var checks []EnvoyGatewayCheck
	for _, o := range set.policies {
		c, err := set.checkPolicy(o, proxyEnv)
		if err != nil {
			return nil, fmt.Errorf("envoy-gateway: %s: %w", o, err)
		}
		if c != nil {
			checks = append(checks, *c)
		}
	}
	if len(checks) == 0 {
		return nil, errors.New("envoy-gateway: no EnvoyExtensionPolicy runs the chips filter")
	}
	return checks, nil
}

// checkRoute checks that a route attaches to a Gateway of an Envoy Gateway class and sends traffic to Services that
// exist with the port named.
func (s *envoyGatewaySet) checkRoute(r *gwapiv1.HTTPRoute) error {
	if len(r.Spec.ParentRefs) == 0 {
		return errors.New("spec.parentRefs: empty; the route attaches to no Gateway")
	}
	for i, p := range r.Spec.ParentRefs {
		if s.parentGateway(r, p) == nil {
			return fmt.Errorf("spec.parentRefs[%d]: no Gateway %s/%s of an Envoy Gateway GatewayClass", i, refNamespace(p.Namespace, r.Namespace), p.Name)
		}
	}
	return checkBackendRefs(r, s.services)
}

// parentGateway returns the Gateway a parentRef names, if it is one of an Envoy Gateway class.
func (s *envoyGatewaySet) parentGateway(r *gwapiv1.HTTPRoute, p gwapiv1.ParentReference) *gwapiv1.Gateway {
	if (p.Kind != nil && *p.Kind != "Gateway") || (p.Group != nil && *p.Group != gwapiv1.GroupName) {
		return nil
	}
	for _, g := range s.gateways {
		if g.Namespace == refNamespace(p.Namespace, r.Namespace) && g.Name == string(p.Name) && s.class(g) != nil {
			return g
		}
	}
	return nil
}

// class returns the Envoy Gateway GatewayClass of g.
func (s *envoyGatewaySet) class(g *gwapiv1.Gateway) *gwapiv1.GatewayClass {
	for _, c := range s.classes {
		if c.Name == string(g.Spec.GatewayClassName) && c.Spec.ControllerName == envoyGatewayController {
			return c
		}
	}
	return nil
}

// proxyOf returns the EnvoyProxy a Gateway's class names in its parametersRef (Envoy Gateway's defaults without one).
func (s *envoyGatewaySet) proxyOf(g *gwapiv1.Gateway) (*egv1a1.EnvoyProxy, error) {
	c := s.class(g)
	ref := c.Spec.ParametersRef
	if ref == nil {
		return nil, nil
	}
	if ref.Group != egv1a1.GroupName || ref.Kind != egv1a1.KindEnvoyProxy || ref.Namespace == nil {
		return nil, fmt.Errorf("GatewayClass %s: parametersRef must name an EnvoyProxy (group %s) with its namespace", c.Name, egv1a1.GroupName)
	}
	for _, p := range s.proxies {
		if p.Name == ref.Name && p.Namespace == string(*ref.Namespace) {
			return p, nil
		}
	}
	return nil, fmt.Errorf("GatewayClass %s: parametersRef: no EnvoyProxy %s/%s", c.Name, *ref.Namespace, ref.Name)
}

func (s *envoyGatewaySet) checkPolicy(o Object, proxyEnv func(string) (string, bool)) (*EnvoyGatewayCheck, error) {
	p := o.Value.(*egv1a1.EnvoyExtensionPolicy)
	var w *egv1a1.Wasm
	for i := range p.Spec.Wasm {
		if p.Spec.Wasm[i].Name != nil && *p.Spec.Wasm[i].Name == "chips" {
			w = &p.Spec.Wasm[i]
		}
	}
	if w == nil {
		return nil, nil // another extension; not ours to judge
	}
	c := &EnvoyGatewayCheck{Policy: o, Wasm: w}
	if err := checkWasmCode(w.Code); err != nil {
		return nil, err
	}
	if w.FailOpen == nil || *w.FailOpen {
		return nil, errors.New("spec.wasm[chips].failOpen: must be false, and written down: a skipped filter lets clients pin a backend with their own routing header, leaks backend addresses and leaves cookies unpartitioned")
	}
	var hostKeys []string
	if w.Env != nil {
		hostKeys = w.Env.HostKeys
	}
	if w.Config != nil {
		c.ConfigJSON = string(w.Config.Raw)
	}
	cfg, err := parseFilterConfig([]byte(c.ConfigJSON), vmEnv{fromHost: hostKeys, host: proxyEnv})
	if err != nil {
		return nil, fmt.Errorf("spec.wasm[chips].config: %w", err)
	}
	c.Config = cfg

	gateways, err := s.targets(p, c)
	if err != nil {
		return nil, err
	}
	for _, g := range gateways {
		proxy, err := s.proxyOf(g)
		if err != nil {
			return nil, err
		}
		if c.Proxy != nil && proxy != c.Proxy {
			return nil, errors.New("spec.targetRefs: the routes attach to Gateways with different EnvoyProxies; keep one")
		}
		c.Proxy = proxy
	}
	if !cfg.Affinity.Enabled {
		return c, s.checkNoSession(c)
	}
	if !slices.Contains(hostKeys, cfg.Affinity.KeysEnv) {
		return nil, fmt.Errorf("spec.wasm[chips].env.hostKeys: must list %s, so the keys come from the Envoy container's environment (a Secret), not from this manifest", cfg.Affinity.KeysEnv)
	}
	if err := checkProxyKeys(c.Proxy, cfg.Affinity.KeysEnv); err != nil {
		return nil, err
	}
	for _, r := range c.Routes {
		if err := checkSessionPersistence(r, cfg.Affinity.RoutingHeader); err != nil {
			return nil, fmt.Errorf("HTTPRoute %s/%s: %w", r.Namespace, r.Name, err)
		}
	}
	var order []egv1a1.FilterPosition
	if c.Proxy != nil {
		order = c.Proxy.Spec.FilterOrder
	}
	c.Filters = envoyGatewayFilterOrder([]egv1a1.EnvoyFilter{egv1a1.EnvoyFilterWasm, egv1a1.EnvoyFilterSessionPersistence, egv1a1.EnvoyFilterRouter}, order)
	if slices.Index(c.Filters, egv1a1.EnvoyFilterWasm) > slices.Index(c.Filters, egv1a1.EnvoyFilterSessionPersistence) {
		return nil, fmt.Errorf("Envoy Gateway would build the HTTP filters %v: %s after %s, so the stateful session filter routes by a client's own %s header before the chips filter can remove it, and adds backend addresses to responses after the chips filter has run; add to the EnvoyProxy spec.filterOrder: [{name: %s, before: %s}]",
			c.Filters, egv1a1.EnvoyFilterWasm, egv1a1.EnvoyFilterSessionPersistence, cfg.Affinity.RoutingHeader, egv1a1.EnvoyFilterWasm, egv1a1.EnvoyFilterSessionPersistence)
	}
	return c, nil
}

// checkWasmCode requires the module from an image whose digest Envoy Gateway verifies.
func checkWasmCode(code egv1a1.WasmCodeSource) error {
	if code.Type != egv1a1.ImageWasmCodeSourceType || code.Image == nil {
		return fmt.Errorf("spec.wasm[chips].code: type %q; want Image with image.url and image.sha256 (make oci, make sha256)", code.Type)
	}
	if code.Image.URL == "" {
		return errors.New("spec.wasm[chips].code.image.url: missing")
	}
	if code.Image.SHA256 == nil || !sha256Pattern.MatchString(*code.Image.SHA256) {
		return errors.New("spec.wasm[chips].code.image.sha256: want the image's manifest digest, 64 lowercase hex digits without \"sha256:\" (make sha256); without it Envoy Gateway runs whatever the tag points to")
	}
	return nil
}

// targets resolves the policy's targetRefs to routes (a Gateway target stands for every route attached to it) and
// returns the Gateways those routes attach to.
func (s *envoyGatewaySet) targets(p *egv1a1.EnvoyExtensionPolicy, c *EnvoyGatewayCheck) ([]*gwapiv1.Gateway, error) {
	refs := p.Spec.TargetRefs
	if p.Spec.TargetRef != nil {
		refs = append(refs, *p.Spec.TargetRef)
	}
	if len(refs) == 0 {
		return nil, errors.New("spec.targetRefs: empty; the policy applies to nothing")
	}
	var gateways []*gwapiv1.Gateway
	for i, ref := range refs {
		if ref.Group != gwapiv1.GroupName {
			return nil, fmt.Errorf("spec.targetRefs[%d].group: %q; want %s", i, ref.Group, gwapiv1.GroupName)
		}
		switch ref.Kind {
		case "HTTPRoute":
			r := findRoute(s.routes, p.Namespace, string(ref.Name))
			if r == nil {
				return nil, fmt.Errorf("spec.targetRefs[%d]: no HTTPRoute %s/%s (a policy targets its own namespace)", i, p.Namespace, ref.Name)
			}
			c.Routes = append(c.Routes, r)
			for _, pr := range r.Spec.ParentRefs {
				gateways = append(gateways, s.parentGateway(r, pr))
			}
		case "Gateway":
			var g *gwapiv1.Gateway
			for _, cand := range s.gateways {
				if cand.Namespace == p.Namespace && cand.Name == string(ref.Name) {
					g = cand
				}
			}
			if g == nil || s.class(g) == nil {
				return nil, fmt.Errorf("spec.targetRefs[%d]: no Gateway %s/%s of an Envoy Gateway GatewayClass", i, p.Namespace, ref.Name)
			}
			gateways = append(gateways, g)
			for _, r := range s.routes {
				if slices.ContainsFunc(r.Spec.ParentRefs, func(pr gwapiv1.ParentReference) bool { return s.parentGateway(r, pr) == g }) {
					c.Routes = append(c.Routes, r)
				}
			}
		default:
			return nil, fmt.Errorf("spec.targetRefs[%d].kind: %q; want HTTPRoute or Gateway", i, ref.Kind)
		}
	}
	return gateways, nil
}

// checkSessionPersistence requires header-based session persistence on the filter's routing header in every rule:
// a rule without it routes by load balancing alone and the affinity cookie would pin nothing.
func checkSessionPersistence(r *gwapiv1.HTTPRoute, header string) error {
	for i, rule := range r.Spec.Rules {
		sp := rule.SessionPersistence
		switch {
		case sp == nil:
			return fmt.Errorf("spec.rules[%d].sessionPersistence: missing; with affinity on, want {type: Header, sessionName: %s} (Gateway API experimental channel)", i, header)
		case sp.Type == nil || *sp.Type != gwapiv1.HeaderBasedSessionPersistence:
			return fmt.Errorf("spec.rules[%d].sessionPersistence.type: want Header (the filter sets a request header from its cookie), got %v", i, typeOrDefault(sp.Type))
		case sp.SessionName == nil || *sp.SessionName != header:
			return fmt.Errorf("spec.rules[%d].sessionPersistence.sessionName: want %q, the filter's affinity.routing_header", i, header)
		}
	}
	return nil
}

func typeOrDefault(t *gwapiv1.SessionPersistenceType) string {
	if t == nil {
		return "Cookie (the default)"
	}
	return string(*t)
}

// checkNoSession refuses header-based session persistence on routes where the filter has affinity off: nothing would
// then remove a client's own routing header.
func (s *envoyGatewaySet) checkNoSession(c *EnvoyGatewayCheck) error {
	for _, r := range c.Routes {
		for i, rule := range r.Spec.Rules {
			if sp := rule.SessionPersistence; sp != nil && sp.Type != nil && *sp.Type == gwapiv1.HeaderBasedSessionPersistence {
				return fmt.Errorf("HTTPRoute %s/%s: spec.rules[%d].sessionPersistence is header-based but the chips filter has affinity off, so nothing removes client-sent headers: clients could pick their backend", r.Namespace, r.Name, i)
			}
		}
	}
	return nil
}

// checkProxyKeys requires the EnvoyProxy to put the keys variable into the Envoy container's environment from a
// Secret.
func checkProxyKeys(p *egv1a1.EnvoyProxy, keysEnv string) error {
	if p == nil {
		return fmt.Errorf("the Gateway's class has no EnvoyProxy: nothing puts %s into the Envoy container's environment, and the default filter order puts wasm after stateful_session", keysEnv)
	}
	var env []corev1.EnvVar
	if k := p.Spec.Provider; k != nil && k.Kubernetes != nil && k.Kubernetes.EnvoyDeployment != nil && k.Kubernetes.EnvoyDeployment.Container != nil {
		env = k.Kubernetes.EnvoyDeployment.Container.Env
	}
	for _, e := range env {
		if e.Name != keysEnv {
			continue
		}
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
			return fmt.Errorf("EnvoyProxy %s/%s: spec.provider.kubernetes.envoyDeployment.container.env %s must take its value from a Secret (valueFrom.secretKeyRef)", p.Namespace, p.Name, keysEnv)
		}
		return nil
	}
	return fmt.Errorf("EnvoyProxy %s/%s: spec.provider.kubernetes.envoyDeployment.container.env has no %s; the filter would start without keys", p.Namespace, p.Name, keysEnv)
}

// checkBackendRefs requires every backend of an HTTPRoute to be a Service that exists, with the port named.
func checkBackendRefs(r *gwapiv1.HTTPRoute, services []*corev1.Service) error {
	for i, rule := range r.Spec.Rules {
		for j, b := range rule.BackendRefs {
			if (b.Kind != nil && *b.Kind != "Service") || (b.Group != nil && *b.Group != "") {
				return fmt.Errorf("spec.rules[%d].backendRefs[%d]: want a Service (group \"\", kind Service)", i, j)
			}
			ns := refNamespace(b.Namespace, r.Namespace)
			svc := findService(services, ns, string(b.Name))
			if svc == nil {
				return fmt.Errorf("spec.rules[%d].backendRefs[%d]: no Service %s/%s", i, j, ns, b.Name)
			}
			if b.Port == nil {
				return fmt.Errorf("spec.rules[%d].backendRefs[%d].port: missing", i, j)
			}
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == *b.Port }) {
				return fmt.Errorf("spec.rules[%d].backendRefs[%d]: Service %s/%s has no port %d", i, j, ns, svc.Name, *b.Port)
			}
		}
	}
	return nil
}

func refNamespace(ns *gwapiv1.Namespace, def string) string {
	if ns == nil {
		return def
	}
	return string(*ns)
}

func findService(services []*corev1.Service, ns, name string) *corev1.Service {
	for _, s := range services {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func findRoute(routes []*gwapiv1.HTTPRoute, ns, name string) *gwapiv1.HTTPRoute {
	for _, r := range routes {
		if r.Namespace == ns && r.Name == name {
			return r
		}
	}
	return nil
}
