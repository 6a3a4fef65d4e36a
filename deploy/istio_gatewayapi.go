package deploy

import (
	"fmt"
	"slices"

	typeapi "istio.io/api/type/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Istio with the Kubernetes Gateway API: a Gateway of class istio, for which Istio deploys and labels the gateway
// pods itself; HTTPRoutes instead of VirtualServices; a WasmPlugin attached with targetRefs instead of a selector.
// Istio builds routes from HTTPRoutes as it does from VirtualServices, so the Service's
// istio.io/persistent-session-header label still adds the stateful session filter; the Gateway API's own
// sessionPersistence field is not implemented by Istio and is refused here, so nobody relies on it.

const (
	istioGatewayClass = "istio"
	// istioProxyContainer is the container of Istio's gateway pods that runs Envoy.
	istioProxyContainer = "istio-proxy"
)

// targetGateway resolves a WasmPlugin's targetRefs: exactly one Gateway API Gateway of class istio, in the plugin's
// namespace (Istio attaches a WasmPlugin only to targets in its own namespace).
func (objs *istioObjects) targetGateway(ns string, refs []*typeapi.PolicyTargetReference) (*gwapiv1.Gateway, error) {
	if len(refs) != 1 {
		return nil, fmt.Errorf("spec.targetRefs: %d entries; want the one Gateway the filter runs on", len(refs))
	}
	ref := refs[0]
	if ref.GetGroup() != gwapiv1.GroupName || ref.GetKind() != "Gateway" {
		return nil, fmt.Errorf("spec.targetRefs[0]: %s/%s; want group %s kind Gateway", ref.GetGroup(), ref.GetKind(), gwapiv1.GroupName)
	}
	if ref.GetNamespace() != "" && ref.GetNamespace() != ns {
		return nil, fmt.Errorf("spec.targetRefs[0].namespace: %s; a WasmPlugin attaches only to targets in its own namespace %s", ref.GetNamespace(), ns)
	}
	for _, g := range objs.kgateways {
		if g.Namespace == ns && g.Name == ref.GetName() {
			if g.Spec.GatewayClassName != istioGatewayClass {
				return nil, fmt.Errorf("spec.targetRefs[0]: Gateway %s/%s has class %q; Istio serves class %q", ns, g.Name, g.Spec.GatewayClassName, istioGatewayClass)
			}
			return g, nil
		}
	}
	return nil, fmt.Errorf("spec.targetRefs[0]: no Gateway %s/%s", ns, ref.GetName())
}

// checkIstioRoute checks an HTTPRoute for Istio: it attaches to a Gateway of class istio, sends traffic to Services
// that exist with the port named, and does not ask for sessionPersistence, which Istio ignores.
func (objs *istioObjects) checkIstioRoute(r *gwapiv1.HTTPRoute) error {
	for i, p := range r.Spec.ParentRefs {
		if objs.parent(r, p) == nil {
			return fmt.Errorf("spec.parentRefs[%d]: no Gateway %s/%s of class %s", i, refNamespace(p.Namespace, r.Namespace), p.Name, istioGatewayClass)
		}
	}
	for i, rule := range r.Spec.Rules {
		if rule.SessionPersistence != nil {
			return fmt.Errorf("spec.rules[%d].sessionPersistence: Istio does not implement it; label the Service %s instead", i, persistentSessionHeaderLabel)
		}
	}
	return checkBackendRefs(r, objs.services)
}

// parent returns the Gateway of class istio a parentRef names.
func (objs *istioObjects) parent(r *gwapiv1.HTTPRoute, p gwapiv1.ParentReference) *gwapiv1.Gateway {
	if (p.Kind != nil && *p.Kind != "Gateway") || (p.Group != nil && *p.Group != gwapiv1.GroupName) {
		return nil
	}
	for _, g := range objs.kgateways {
		if g.Namespace == refNamespace(p.Namespace, r.Namespace) && g.Name == string(p.Name) && g.Spec.GatewayClassName == istioGatewayClass {
			return g
		}
	}
	return nil
}

// httpRoutesTo reports whether an HTTPRoute attached to g sends traffic to s.
func (objs *istioObjects) httpRoutesTo(g *gwapiv1.Gateway, s *corev1.Service) bool {
	for _, r := range objs.routes {
		if !slices.ContainsFunc(r.Spec.ParentRefs, func(p gwapiv1.ParentReference) bool { return objs.parent(r, p) == g }) {
			continue
		}
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				if refNamespace(b.Namespace, r.Namespace) == s.Namespace && string(b.Name) == s.Name {
					return true
				}
			}
		}
	}
	return false
}

// checkGatewayOptions checks that the pods Istio deploys for g get the keys variable from a Secret: g's
// spec.infrastructure.parametersRef names a ConfigMap whose "deployment" entry is an overlay of the gateway
// Deployment, with the variable in the istio-proxy container.
func (objs *istioObjects) checkGatewayOptions(g *gwapiv1.Gateway, keysEnv string) error {
	where := fmt.Sprintf("Gateway %s/%s", g.Namespace, g.Name)
	var ref *gwapiv1.LocalParametersReference
	if g.Spec.Infrastructure != nil {
		ref = g.Spec.Infrastructure.ParametersRef
	}
	if ref == nil || ref.Group != "" || ref.Kind != "ConfigMap" {
		return fmt.Errorf("%s: spec.infrastructure.parametersRef must name a ConfigMap (group \"\") whose deployment entry puts %s into the gateway pods' environment", where, keysEnv)
	}
	var cm *corev1.ConfigMap
	for _, c := range objs.configMaps {
		if c.Namespace == g.Namespace && c.Name == ref.Name {
			cm = c
		}
	}
	if cm == nil {
		return fmt.Errorf("%s: spec.infrastructure.parametersRef: no ConfigMap %s/%s", where, g.Namespace, ref.Name)
	}
	where = fmt.Sprintf("ConfigMap %s/%s", cm.Namespace, cm.Name)
	overlay, ok := cm.Data["deployment"]
	if !ok {
		return fmt.Errorf("%s: data.deployment: missing", where)
	}
	var d appsv1.Deployment
	if err := strictYAML([]byte(overlay), &d); err != nil {
		return fmt.Errorf("%s: data.deployment: %w", where, err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != istioProxyContainer {
			continue
		}
		for _, e := range c.Env {
			if e.Name != keysEnv {
				continue
			}
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
				return fmt.Errorf("%s: data.deployment: container %s env %s must take its value from a Secret (valueFrom.secretKeyRef)", where, istioProxyContainer, keysEnv)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: data.deployment: container %s has no env %s, so the plugin's valueFrom: HOST finds no keys", where, istioProxyContainer, keysEnv)
}
