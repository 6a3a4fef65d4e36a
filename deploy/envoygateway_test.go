package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// manifestFiles returns deploy/<dir>/*.yaml by base name.
func manifestFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testwasm.RepoRoot(), "deploy", dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	if len(files) == 0 {
		t.Fatalf("no deploy/%s/*.yaml files", dir)
	}
	return files
}

// decodeFiles decodes every file with DecodeManifest, in name order.
func decodeFiles(files map[string][]byte) ([]Object, error) {
	var objs []Object
	for _, name := range sortedNames(files) {
		o, err := DecodeManifest(name, files[name])
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

func checkEnvoyGatewayFiles(t *testing.T, files map[string][]byte) ([]EnvoyGatewayCheck, error) {
	t.Helper()
	objs, err := decodeFiles(files)
	if err != nil {
		return nil, err
	}
	return CheckEnvoyGateway(objs, proxyEnv(t))
}

func TestEnvoyGatewayManifests(t *testing.T) {
	checks, err := checkEnvoyGatewayFiles(t, manifestFiles(t, "envoy-gateway"))
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 {
		t.Fatalf("%d policies run the filter, want 1", len(checks))
	}
	c := checks[0]
	want := []egv1a1.EnvoyFilter{egv1a1.EnvoyFilterWasm, egv1a1.EnvoyFilterSessionPersistence, egv1a1.EnvoyFilterRouter}
	if !reflect.DeepEqual(c.Filters, want) {
		t.Errorf("filter chain %v, want %v", c.Filters, want)
	}
	if a := c.Config.Affinity; !a.Enabled || a.KeysEnv != keysVar || a.RoutingHeader != "x-chips-upstream" || a.Sealer == nil {
		t.Errorf("affinity %+v", a)
	}
	if len(c.Routes) != 1 || c.Routes[0].Name != "chat" || c.Proxy == nil || c.Proxy.Name != "chips-proxy" {
		t.Errorf("routes %v, proxy %v", c.Routes, c.Proxy)
	}
}

// The model of Envoy Gateway's filter ordering, on the cases that matter here.
func TestEnvoyGatewayFilterOrder(t *testing.T) {
	wasm, session, router := egv1a1.EnvoyFilterWasm, egv1a1.EnvoyFilterSessionPersistence, egv1a1.EnvoyFilterRouter
	ptr := func(f egv1a1.EnvoyFilter) *egv1a1.EnvoyFilter { return &f }
	present := []egv1a1.EnvoyFilter{router, wasm, session}
	tests := []struct {
		name      string
		positions []egv1a1.FilterPosition
		want      []egv1a1.EnvoyFilter
	}{
		{"default", nil, []egv1a1.EnvoyFilter{session, wasm, router}},
		{"wasm before session", []egv1a1.FilterPosition{{Name: wasm, Before: ptr(session)}}, []egv1a1.EnvoyFilter{wasm, session, router}},
		{"session after wasm", []egv1a1.FilterPosition{{Name: session, After: ptr(wasm)}}, []egv1a1.EnvoyFilter{wasm, session, router}},
		{"a later position undoes it", []egv1a1.FilterPosition{{Name: wasm, Before: ptr(session)}, {Name: wasm, After: ptr(session)}}, []egv1a1.EnvoyFilter{session, wasm, router}},
		{"absent anchor", []egv1a1.FilterPosition{{Name: wasm, Before: ptr(egv1a1.EnvoyFilterJWTAuthn)}}, []egv1a1.EnvoyFilter{session, wasm, router}},
		{"wasm after router", []egv1a1.FilterPosition{{Name: wasm, After: ptr(router)}}, []egv1a1.EnvoyFilter{session, router, wasm}},
	}
	for _, tt := range tests {
		if got := envoyGatewayFilterOrder(present, tt.positions); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Each case breaks a copy of one deploy/envoy-gateway file in one way and names what the error must point at.
func TestEnvoyGatewayManifestsBroken(t *testing.T) {
	good := manifestFiles(t, "envoy-gateway")
	wasm := func(r map[string]any) map[string]any { return mapAt(t, r, "spec", "wasm", 0) }
	rule := func(r map[string]any) map[string]any { return mapAt(t, r, "spec", "rules", 0) }
	proxySpec := func(r map[string]any) map[string]any { return mapAt(t, r, "spec") }
	tests := []brokenCase{
		{"no filterOrder", "envoyproxy.yaml", 1, func(r map[string]any) {
			delete(proxySpec(r), "filterOrder")
		}, []string{"Envoy Gateway would build the HTTP filters [envoy.filters.http.stateful_session envoy.filters.http.wasm envoy.filters.http.router]", "add to the EnvoyProxy spec.filterOrder"}},
		{"filterOrder the wrong way round", "envoyproxy.yaml", 1, func(r map[string]any) {
			p := mapAt(t, proxySpec(r), "filterOrder", 0)
			p["after"] = p["before"]
			delete(p, "before")
		}, []string{"envoy.filters.http.wasm after envoy.filters.http.stateful_session"}},
		{"no EnvoyProxy for the class", "envoyproxy.yaml", 0, func(r map[string]any) {
			delete(mapAt(t, r, "spec"), "parametersRef")
		}, []string{"the Gateway's class has no EnvoyProxy"}},
		{"keys missing from the Envoy container", "envoyproxy.yaml", 1, func(r map[string]any) {
			delete(mapAt(t, proxySpec(r), "provider", "kubernetes", "envoyDeployment", "container"), "env")
		}, []string{"container.env has no CHIPS_AFFINITY_KEYS"}},
		{"keys written into the EnvoyProxy", "envoyproxy.yaml", 1, func(r map[string]any) {
			e := mapAt(t, proxySpec(r), "provider", "kubernetes", "envoyDeployment", "container", "env", 0)
			delete(e, "valueFrom")
			e["value"] = "REVNTy1LRVktTk9ULUZPUi1QUk9EVUNUSU9OLVVTRSE="
		}, []string{"CHIPS_AFFINITY_KEYS must take its value from a Secret"}},
		{"EnvoyProxy field typo", "envoyproxy.yaml", 1, func(r map[string]any) {
			proxySpec(r)["filterOrders"] = proxySpec(r)["filterOrder"]
		}, []string{"envoyproxy.yaml: document 2 (EnvoyProxy envoy-gateway-system/chips-proxy)", `unknown field "spec.filterOrders"`}},
		{"failOpen true", "extensionpolicy.yaml", 0, func(r map[string]any) {
			wasm(r)["failOpen"] = true
		}, []string{"failOpen: must be false"}},
		{"failOpen left to the default", "extensionpolicy.yaml", 0, func(r map[string]any) {
			delete(wasm(r), "failOpen")
		}, []string{"failOpen: must be false, and written down"}},
		{"no digest", "extensionpolicy.yaml", 0, func(r map[string]any) {
			delete(mapAt(t, wasm(r), "code", "image"), "sha256")
		}, []string{"code.image.sha256: want the image's manifest digest"}},
		{"digest with prefix", "extensionpolicy.yaml", 0, func(r map[string]any) {
			mapAt(t, wasm(r), "code", "image")["sha256"] = "sha256:" + strings.Repeat("0", 64)
		}, []string{"without \"sha256:\""}},
		{"HTTP code source", "extensionpolicy.yaml", 0, func(r map[string]any) {
			mapAt(t, wasm(r), "code")["type"] = "HTTP"
		}, []string{`code: type "HTTP"; want Image`}},
		{"hostKeys without the keys variable", "extensionpolicy.yaml", 0, func(r map[string]any) {
			delete(wasm(r), "env")
		}, []string{"spec.wasm[chips].config: config: affinity.keys_env: environment variable CHIPS_AFFINITY_KEYS is not set"}},
		{"config key typo", "extensionpolicy.yaml", 0, func(r map[string]any) {
			mapAt(t, wasm(r), "config", "affinity")["routing_headr"] = "x"
		}, []string{"spec.wasm[chips].config: config: affinity.routing_headr: unknown key"}},
		{"keys pasted inline", "extensionpolicy.yaml", 0, func(r map[string]any) {
			a := mapAt(t, wasm(r), "config", "affinity")
			delete(a, "keys_env")
			a["keys"] = []any{"REVNTy1LRVktTk9ULUZPUi1QUk9EVUNUSU9OLVVTRSE="}
		}, []string{"keys pasted into a manifest"}},
		{"policy field typo", "extensionpolicy.yaml", 0, func(r map[string]any) {
			wasm(r)["failopen"] = false
		}, []string{"extensionpolicy.yaml: document 1 (EnvoyExtensionPolicy chat/chips)", `unknown field "spec.wasm[0].failopen"`}},
		{"policy on an unknown route", "extensionpolicy.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "spec", "targetRefs", 0)["name"] = "chats"
		}, []string{"no HTTPRoute chat/chats"}},
		{"session persistence missing", "gateway.yaml", 1, func(r map[string]any) {
			delete(rule(r), "sessionPersistence")
		}, []string{"spec.rules[0].sessionPersistence: missing", "{type: Header, sessionName: x-chips-upstream}"}},
		{"cookie session persistence", "gateway.yaml", 1, func(r map[string]any) {
			delete(mapAt(t, rule(r), "sessionPersistence"), "type")
		}, []string{"sessionPersistence.type: want Header", "Cookie (the default)"}},
		{"session header differs from the filter's", "gateway.yaml", 1, func(r map[string]any) {
			mapAt(t, rule(r), "sessionPersistence")["sessionName"] = "x-upstream"
		}, []string{`sessionPersistence.sessionName: want "x-chips-upstream"`}},
		{"HTTPRoute field typo", "gateway.yaml", 1, func(r map[string]any) {
			rule(r)["sessionPersistance"] = rule(r)["sessionPersistence"]
		}, []string{"gateway.yaml: document 2 (HTTPRoute chat/chat)", `unknown field "spec.rules[0].sessionPersistance"`}},
		{"backend port", "gateway.yaml", 1, func(r map[string]any) {
			mapAt(t, rule(r), "backendRefs", 0)["port"] = 80
		}, []string{"Service chat/gms has no port"}},
		{"Gateway of another class", "gateway.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "spec")["gatewayClassName"] = "istio"
		}, []string{"no Gateway chat/chat-gateway of an Envoy Gateway GatewayClass"}},
	}
	runBrokenCases(t, good, tests, func(files map[string][]byte) error {
		_, err := checkEnvoyGatewayFiles(t, files)
		return err
	})
}

// With affinity off the filter needs neither the ordering nor session persistence, and header-based session
// persistence would then be an open door.
func TestEnvoyGatewayPartitioningOnly(t *testing.T) {
	files := manifestFiles(t, "envoy-gateway")
	files["extensionpolicy.yaml"] = mutateYAML(t, files["extensionpolicy.yaml"], 0, func(r map[string]any) {
		delete(mapAt(t, r, "spec", "wasm", 0, "config"), "affinity")
	})
	_, err := checkEnvoyGatewayFiles(t, files)
	wantError(t, err, "sessionPersistence is header-based but the chips filter has affinity off")
	files["gateway.yaml"] = mutateYAML(t, files["gateway.yaml"], 1, func(r map[string]any) {
		delete(mapAt(t, r, "spec", "rules", 0), "sessionPersistence")
	})
	files["envoyproxy.yaml"] = mutateYAML(t, files["envoyproxy.yaml"], 1, func(r map[string]any) {
		delete(mapAt(t, r, "spec"), "filterOrder")
	})
	if _, err := checkEnvoyGatewayFiles(t, files); err != nil {
		t.Fatal(err)
	}
}
