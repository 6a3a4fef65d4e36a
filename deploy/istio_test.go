package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	extensionsapi "istio.io/api/extensions/v1alpha1"
	extensionsv1alpha1 "istio.io/client-go/pkg/apis/extensions/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// istioFiles returns istio/*.yaml by base name.
func istioFiles(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testwasm.RepoRoot(), "deploy", "istio", "*.yaml"))
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
		t.Fatal("no deploy/istio/*.yaml files")
	}
	return files
}

// decodeIstioSet decodes files the way an operator applies them: Kubernetes manifests with DecodeManifest, the two
// Helm values files with their own decoders. Any other *-values.yaml is an error, so a new file cannot go
// unchecked.
func decodeIstioSet(files map[string][]byte) (IstioSet, error) {
	var set IstioSet
	for _, name := range sortedNames(files) {
		data := files[name]
		var err error
		switch {
		case name == "istiod-values.yaml":
			set.Istiod, err = DecodeIstiodValues(name, data)
		case name == "gateway-values.yaml":
			set.Gateway, err = DecodeGatewayValues(name, data)
		default:
			var objs []Object
			objs, err = DecodeManifest(name, data)
			set.Objects = append(set.Objects, objs...)
		}
		if err != nil {
			return set, err
		}
	}
	return set, nil
}

func checkIstioFiles(t *testing.T, files map[string][]byte) ([]WasmPluginCheck, error) {
	t.Helper()
	set, err := decodeIstioSet(files)
	if err != nil {
		return nil, err
	}
	return CheckIstio(set, proxyEnv(t))
}

func TestIstioManifests(t *testing.T) {
	files := istioFiles(t)
	for _, want := range []string{"wasmplugin-gateway.yaml", "wasmplugin-sidecar.yaml", "gateway.yaml", "service.yaml", "istiod-values.yaml", "gateway-values.yaml"} {
		if files[want] == nil {
			t.Errorf("deploy/istio/%s is missing", want)
		}
	}
	set, err := decodeIstioSet(files)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range set.Objects {
		kinds[o.Kind]++
	}
	if kinds["WasmPlugin"] != 2 || kinds["Gateway"] != 1 || kinds["VirtualService"] != 1 || kinds["Service"] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
	checks, err := CheckIstio(set, proxyEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]WasmPluginCheck{}
	for _, c := range checks {
		byName[c.Object.Name] = c
	}

	gw := byName["chips-gateway"]
	spec := &gw.Object.Value.(*extensionsv1alpha1.WasmPlugin).Spec
	if gw.Gateway == nil || gw.Gateway.Name != "chat-gateway" {
		t.Errorf("chips-gateway does not run on the chat Gateway's workload")
	}
	if a := gw.Config.Affinity; !a.Enabled || a.KeysEnv != keysVar || a.RoutingHeader != "x-chips-upstream" || a.Sealer == nil {
		t.Errorf("gateway affinity %+v", a)
	}
	if !strings.HasPrefix(spec.GetUrl(), "oci://") || spec.GetImagePullPolicy() != extensionsapi.PullPolicy_IfNotPresent {
		t.Errorf("url %q, imagePullPolicy %s", spec.GetUrl(), spec.GetImagePullPolicy())
	}
	if spec.GetFailStrategy() != extensionsapi.FailStrategy_FAIL_RELOAD || spec.GetPhase() != extensionsapi.PluginPhase_AUTHN || spec.GetPriority().GetValue() != 1000 {
		t.Errorf("failStrategy %s, phase %s, priority %v: the manifest's comments argue for FAIL_RELOAD, AUTHN, 1000",
			spec.GetFailStrategy(), spec.GetPhase(), spec.GetPriority())
	}

	sc := byName["chips-sidecar"]
	if sc.Gateway != nil || sc.Config.Affinity.Enabled {
		t.Errorf("chips-sidecar: gateway %v, affinity %v; want sidecars only, partitioning only", sc.Gateway, sc.Config.Affinity.Enabled)
	}
}

// Istio passes pluginConfig to the filter as JSON, so the same configuration must mean the same thing on Envoy
// and on Istio: the gateway plugin carries envoy.yaml's configuration, the sidecar plugin its cookie policy.
func TestIstioConfigMatchesEnvoy(t *testing.T) {
	_, chains, err := loadEnvoy(t, readRepoFile(t, "deploy/envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checks, err := checkIstioFiles(t, istioFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	envoyJSON := []byte(chains[0].ConfigJSON)
	for _, c := range checks {
		switch c.Object.Name {
		case "chips-gateway":
			if !jsonEqual(t, []byte(c.ConfigJSON), envoyJSON) {
				t.Errorf("chips-gateway pluginConfig %s\ndiffers from envoy.yaml's configuration %s", c.ConfigJSON, envoyJSON)
			}
		case "chips-sidecar":
			var a, b struct{ Cookies json.RawMessage }
			_ = json.Unmarshal([]byte(c.ConfigJSON), &a)
			_ = json.Unmarshal(envoyJSON, &b)
			if !jsonEqual(t, a.Cookies, b.Cookies) {
				t.Errorf("chips-sidecar cookies %s differ from envoy.yaml's %s", a.Cookies, b.Cookies)
			}
		}
	}
}

// The README walks an operator through creating the Secret the gateway values read; the names must agree.
func TestIstioREADMEMatchesManifests(t *testing.T) {
	// Shell line continuations joined, so that a command reads as one line.
	readme := strings.ReplaceAll(string(readRepoFile(t, "deploy/istio/README.md")), "\\\n", "")
	set, err := decodeIstioSet(istioFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	ref := set.Gateway.EnvVarFrom[0].ValueFrom.SecretKeyRef
	create := regexp.MustCompile(`kubectl -n istio-ingress create secret generic ` + regexp.QuoteMeta(ref.Name) + `\b[^\n]*--from-literal=` + regexp.QuoteMeta(ref.Key) + `=`)
	if !create.MatchString(readme) {
		t.Errorf("deploy/istio/README.md does not show `kubectl -n istio-ingress create secret generic %s --from-literal=%s=…`", ref.Name, ref.Key)
	}
	for _, want := range []string{"head -c 32 /dev/urandom | base64", "make sha256", "make oci", "PILOT_ENABLE_PERSISTENT_SESSION_FILTER"} {
		if !strings.Contains(readme, want) {
			t.Errorf("deploy/istio/README.md does not mention %q", want)
		}
	}
}

// sigs.k8s.io/yaml.UnmarshalStrict into the client-go type lets a misspelt spec field through, because the spec
// type's own UnmarshalJSON allows unknown fields. That is why DecodeManifest decodes specs with protojson; if this
// test starts failing, upstream has become strict and DecodeManifest could be simplified.
func TestClientGoStrictMissesSpecTypos(t *testing.T) {
	doc := []byte("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: x, namespace: ns}\nspec:\n  url: oci://r/x:1\n  pluginConfg: {}\n")
	var wp extensionsv1alpha1.WasmPlugin
	if err := yaml.UnmarshalStrict(doc, &wp); err != nil {
		t.Skipf("client-go decoding is strict now: %v", err)
	}
	_, err := DecodeManifest("typo.yaml", doc)
	wantError(t, err, `spec.pluginConfg: unknown field "pluginConfg"`)
}

// Each case breaks a copy of one istio/ file in one way and names what the error must point at.
func TestIstioManifestsBroken(t *testing.T) {
	good := istioFiles(t)
	wasmGW := func(r map[string]any) map[string]any { return mapAt(t, r, "spec") }
	pluginCfg := func(r map[string]any) map[string]any { return mapAt(t, r, "spec", "pluginConfig") }
	tests := []brokenCase{
		{"unknown spec field", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			wasmGW(r)["failStrategyy"] = "FAIL_RELOAD"
		}, []string{"wasmplugin-gateway.yaml: document 1 (WasmPlugin istio-ingress/chips-gateway)", `spec.failStrategyy: unknown field "failStrategyy"`}},
		{"unknown top-level field", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			r["metdata"] = map[string]any{"name": "x"}
		}, []string{`unknown field "metdata"`}},
		{"unknown metadata field", "service.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "metadata")["label"] = map[string]any{"app": "gms"}
		}, []string{"service.yaml", `unknown field "metadata.label"`}},
		{"unknown field in a Service", "service.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "spec", "ports", 0)["target_port"] = 8080
		}, []string{`unknown field "spec.ports[0].target_port"`}},
		{"Envoy's enum name in failStrategy", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			wasmGW(r)["failStrategy"] = "FAIL_CLOSED"
		}, []string{"spec", "enum", `"FAIL_CLOSED"`}},
		{"FAIL_OPEN with affinity", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			wasmGW(r)["failStrategy"] = "FAIL_OPEN"
		}, []string{"spec.failStrategy: FAIL_OPEN with affinity on"}},
		{"bad phase enum", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			wasmGW(r)["phase"] = "AUTHENTICATION"
		}, []string{"enum", `"AUTHENTICATION"`}},
		{"pluginConfig key typo", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			c := mapAt(t, pluginCfg(r), "cookies")
			c["samesite"] = c["same_site"]
			delete(c, "same_site")
		}, []string{"spec.pluginConfig: config: cookies.samesite: unknown key"}},
		{"pluginConfig wrong type", "wasmplugin-sidecar.yaml", 0, func(r map[string]any) {
			mapAt(t, pluginCfg(r), "cookies")["partitioned"] = "yes"
		}, []string{"wasmplugin-sidecar.yaml", "config: cookies.partitioned: want true or false"}},
		{"keys pasted inline", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			a := mapAt(t, pluginCfg(r), "affinity")
			delete(a, "keys_env")
			a["keys"] = []any{"REVNTy1LRVktTk9ULUZPUi1QUk9EVUNUSU9OLVVTRSE="}
		}, []string{"keys pasted into a manifest"}},
		{"keys variable not in vmConfig.env", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			delete(wasmGW(r), "vmConfig")
		}, []string{"config: affinity.keys_env: environment variable CHIPS_AFFINITY_KEYS is not set"}},
		{"keys variable given inline", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			mapAt(t, wasmGW(r), "vmConfig", "env", 0)["valueFrom"] = "INLINE"
			mapAt(t, wasmGW(r), "vmConfig", "env", 0)["value"] = "REVNTy1LRVktTk9ULUZPUi1QUk9EVUNUSU9OLVVTRSE="
		}, []string{"CHIPS_AFFINITY_KEYS must use valueFrom: HOST"}},
		{"sha256 with prefix", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			wasmGW(r)["sha256"] = "sha256:" + strings.Repeat("0", 64)
		}, []string{"spec.sha256", "without a \"sha256:\" prefix"}},
		{"url scheme", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			wasmGW(r)["url"] = "docker://registry.example.com/chips-proxy-wasm/filter:v1"
		}, []string{`spec.url: scheme "docker"`}},
		{"affinity plugin on sidecars", "wasmplugin-gateway.yaml", 0, func(r map[string]any) {
			mapAt(t, wasmGW(r), "selector")["matchLabels"] = map[string]any{"app": "gms"}
		}, []string{"does not select the workload of a Gateway"}},
		{"sidecar plugin selects nothing known", "wasmplugin-sidecar.yaml", 0, func(r map[string]any) {
			mapAt(t, wasmGW(r), "selector")["matchLabels"] = map[string]any{"app": "gsm"}
		}, []string{"matches neither a Gateway's workload nor the pods of a Service"}},
		{"Service label differs from routing header", "service.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "metadata", "labels")["istio.io/persistent-session-header"] = "x-upstream"
		}, []string{"istio.io/persistent-session-header=x-upstream differs from affinity.routing_header \"x-chips-upstream\""}},
		{"Service label missing", "service.yaml", 0, func(r map[string]any) {
			delete(mapAt(t, r, "metadata", "labels"), "istio.io/persistent-session-header")
		}, []string{"istio.io/persistent-session-header is missing"}},
		{"istiod setting off", "istiod-values.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "env")["PILOT_ENABLE_PERSISTENT_SESSION_FILTER"] = "false"
		}, []string{"PILOT_ENABLE_PERSISTENT_SESSION_FILTER=\"true\""}},
		{"istiod values typo", "istiod-values.yaml", 0, func(r map[string]any) {
			r["envs"] = r["env"]
			delete(r, "env")
		}, []string{"istiod-values.yaml", `unknown field "envs"`}},
		{"gateway values without the keys", "gateway-values.yaml", 0, func(r map[string]any) {
			delete(r, "envVarFrom")
		}, []string{"envVarFrom has no CHIPS_AFFINITY_KEYS"}},
		{"gateway values with a literal key", "gateway-values.yaml", 0, func(r map[string]any) {
			e := mapAt(t, r, "envVarFrom", 0)
			delete(e, "valueFrom")
			e["value"] = "REVNTy1LRVktTk9ULUZPUi1QUk9EVUNUSU9OLVVTRSE="
		}, []string{"must take its value from a Secret"}},
		{"gateway values EnvVar typo", "gateway-values.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "envVarFrom", 0, "valueFrom")["secretRef"] = map[string]any{"name": "x"}
		}, []string{`unknown field "envVarFrom[0].valueFrom.secretRef"`}},
		{"gateway pods labelled otherwise", "gateway-values.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "labels")["istio"] = "ingress"
		}, []string{`label the pods istio="ingress"`}},
		{"VirtualService on an unknown gateway", "gateway.yaml", 1, func(r map[string]any) {
			mapAt(t, r, "spec")["gateways"] = []any{"istio-system/chat-gateway"}
		}, []string{"gateway.yaml: document 2 (VirtualService chat/chat)", "no Gateway istio-system/chat-gateway"}},
		{"VirtualService host not on the gateway", "gateway.yaml", 1, func(r map[string]any) {
			mapAt(t, r, "spec")["hosts"] = []any{"chat.example.org"}
		}, []string{"chat.example.org is not among the hosts"}},
		{"VirtualService to an unknown port", "gateway.yaml", 1, func(r map[string]any) {
			mapAt(t, r, "spec", "http", 0, "route", 0, "destination", "port")["number"] = 80
		}, []string{"Service gms has no port 80"}},
		{"Gateway field under its proto name", "gateway.yaml", 0, func(r map[string]any) {
			tls := mapAt(t, r, "spec", "servers", 0, "tls")
			tls["credential_name"] = tls["credentialName"]
			delete(tls, "credentialName")
		}, []string{"gateway.yaml: document 1", `spec.servers[0].tls.credential_name: Kubernetes knows this field only as "credentialName"`}},
		{"Gateway unknown field", "gateway.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "spec", "servers", 0, "tls")["credentialNam"] = "x"
		}, []string{"gateway.yaml: document 1", `spec.servers[0].tls.credentialNam: unknown field "credentialNam"`}},
		{"field name in the wrong case", "service.yaml", 0, func(r map[string]any) {
			s := mapAt(t, r, "spec")
			s["Selector"] = s["selector"]
			delete(s, "selector")
		}, []string{`unknown field "spec.Selector"`}},
		{"unsupported kind", "service.yaml", 0, func(r map[string]any) {
			r["kind"] = "Deployment"
			r["apiVersion"] = "apps/v1"
		}, []string{`kind "Deployment": not a kind these deployments use`}},
	}
	runBrokenCases(t, good, tests, func(files map[string][]byte) error {
		_, err := checkIstioFiles(t, files)
		return err
	})
}

// An unedited round trip through the mutation harness still passes, so the failures above come from the edits.
func TestIstioManifestsRoundTrip(t *testing.T) {
	good := istioFiles(t)
	files := map[string][]byte{}
	for name, data := range good {
		files[name] = data
		for i := range splitDocs(t, data) {
			files[name] = mutateYAML(t, files[name], i, func(map[string]any) {})
		}
	}
	if _, err := checkIstioFiles(t, files); err != nil {
		t.Fatal(err)
	}
}

func TestIstioDuplicateKey(t *testing.T) {
	good := string(istioFiles(t)["wasmplugin-gateway.yaml"])
	const line = "  imagePullPolicy: IfNotPresent\n"
	if !strings.Contains(good, line) {
		t.Fatalf("no %q line", line)
	}
	_, err := DecodeManifest("wasmplugin-gateway.yaml", []byte(strings.Replace(good, line, line+"  imagePullPolicy: Always\n", 1)))
	wantError(t, err, "imagePullPolicy", "already set")
}
