package deploy

import (
	"testing"
)

// istioGatewayAPIFiles is the Gateway API variant as an operator applies it: deploy/istio/gateway-api/ with the
// chat Service and the istiod values it shares with deploy/istio/.
func istioGatewayAPIFiles(t *testing.T) map[string][]byte {
	files := manifestFiles(t, "istio/gateway-api")
	for _, shared := range []string{"service.yaml", "istiod-values.yaml"} {
		files[shared] = readRepoFile(t, "deploy/istio/"+shared)
	}
	return files
}

func TestIstioGatewayAPIManifests(t *testing.T) {
	checks, err := checkIstioFiles(t, istioGatewayAPIFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 {
		t.Fatalf("%d WasmPlugins, want 1", len(checks))
	}
	c := checks[0]
	if c.GatewayAPI == nil || c.GatewayAPI.Name != "chat-gateway" || c.Gateway != nil {
		t.Errorf("the plugin runs on %v / %v; want the Gateway API Gateway chat-gateway", c.GatewayAPI, c.Gateway)
	}
	if a := c.Config.Affinity; !a.Enabled || a.KeysEnv != keysVar || a.RoutingHeader != "x-chips-upstream" {
		t.Errorf("affinity %+v", a)
	}
}

func TestIstioGatewayAPIManifestsBroken(t *testing.T) {
	good := istioGatewayAPIFiles(t)
	spec := func(r map[string]any) map[string]any { return mapAt(t, r, "spec") }
	overlayEnv := func(r map[string]any) {
		mapAt(t, r, "data")["deployment"] = "spec:\n  template:\n    spec:\n      containers:\n      - name: istio-proxy\n        env:\n        - name: CHIPS_AFFINITY_KEYS\n          value: REVNTy1LRVktTk9ULUZPUi1QUk9EVUNUSU9OLVVTRSE=\n"
	}
	tests := []brokenCase{
		{"target of another kind", "wasmplugin.yaml", 0, func(r map[string]any) {
			mapAt(t, spec(r), "targetRefs", 0)["kind"] = "HTTPRoute"
		}, []string{"spec.targetRefs[0]: gateway.networking.k8s.io/HTTPRoute; want group gateway.networking.k8s.io kind Gateway"}},
		{"target unknown", "wasmplugin.yaml", 0, func(r map[string]any) {
			mapAt(t, spec(r), "targetRefs", 0)["name"] = "chat"
		}, []string{"spec.targetRefs[0]: no Gateway istio-ingress/chat"}},
		{"selector and targetRefs", "wasmplugin.yaml", 0, func(r map[string]any) {
			spec(r)["selector"] = map[string]any{"matchLabels": map[string]any{"istio": "ingressgateway"}}
		}, []string{"set exactly one of selector and targetRefs"}},
		{"FAIL_OPEN", "wasmplugin.yaml", 0, func(r map[string]any) {
			spec(r)["failStrategy"] = "FAIL_OPEN"
		}, []string{"FAIL_OPEN with affinity on"}},
		{"Gateway of another class", "gateway.yaml", 0, func(r map[string]any) {
			spec(r)["gatewayClassName"] = "eg"
		}, []string{"HTTPRoute chat/chat: spec.parentRefs[0]: no Gateway istio-ingress/chat-gateway of class istio"}},
		{"no options ConfigMap", "gateway.yaml", 0, func(r map[string]any) {
			delete(spec(r), "infrastructure")
		}, []string{"spec.infrastructure.parametersRef must name a ConfigMap"}},
		{"keys written into the overlay", "gateway.yaml", 1, overlayEnv, []string{"env CHIPS_AFFINITY_KEYS must take its value from a Secret"}},
		{"overlay typo", "gateway.yaml", 1, func(r map[string]any) {
			mapAt(t, r, "data")["deployment"] = "spec:\n  template:\n    spec:\n      containers:\n      - name: istio-proxy\n        envs: []\n"
		}, []string{"ConfigMap istio-ingress/chat-gateway-options: data.deployment", `unknown field "spec.template.spec.containers[0].envs"`}},
		{"sessionPersistence on the route", "gateway.yaml", 2, func(r map[string]any) {
			mapAt(t, spec(r), "rules", 0)["sessionPersistence"] = map[string]any{"type": "Header", "sessionName": "x-chips-upstream"}
		}, []string{"sessionPersistence: Istio does not implement it"}},
		{"route to a missing port", "gateway.yaml", 2, func(r map[string]any) {
			mapAt(t, spec(r), "rules", 0, "backendRefs", 0)["port"] = 80
		}, []string{"Service chat/gms has no port 80"}},
		{"route on an unknown gateway", "gateway.yaml", 2, func(r map[string]any) {
			delete(mapAt(t, spec(r), "parentRefs", 0), "namespace")
		}, []string{"spec.parentRefs[0]: no Gateway chat/chat-gateway of class istio"}},
		{"Service label missing", "service.yaml", 0, func(r map[string]any) {
			delete(mapAt(t, r, "metadata", "labels"), "istio.io/persistent-session-header")
		}, []string{"istio.io/persistent-session-header is missing"}},
	}
	runBrokenCases(t, good, tests, func(files map[string][]byte) error {
		_, err := checkIstioFiles(t, files)
		return err
	})
}
