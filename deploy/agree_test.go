package deploy

import (
	"slices"
	"strings"
	"testing"

	extensionsv1alpha1 "istio.io/client-go/pkg/apis/extensions/v1alpha1"
)

// The four targets run the same filter with the same configuration, so the places where they name the same thing
// must agree: the filter configuration, the routing header (filter, stateful session, Service label, HTTPRoute),
// the keys variable, and the image with its digest.
func TestDeploymentsAgree(t *testing.T) {
	_, chains, err := loadEnvoy(t, readRepoFile(t, "deploy/envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	envoy := chains[0]
	istio, err := checkIstioFiles(t, istioFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	istioAPI, err := checkIstioFiles(t, istioGatewayAPIFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	eg, err := checkEnvoyGatewayFiles(t, manifestFiles(t, "envoy-gateway"))
	if err != nil {
		t.Fatal(err)
	}
	var gatewayPlugins []WasmPluginCheck
	for _, c := range append(istio, istioAPI...) {
		if c.Config.Affinity.Enabled {
			gatewayPlugins = append(gatewayPlugins, c)
		}
	}
	if len(gatewayPlugins) != 2 {
		t.Fatalf("%d Istio gateway plugins with affinity, want 2", len(gatewayPlugins))
	}

	envoyJSON := []byte(envoy.ConfigJSON)
	header := envoy.Config.Affinity.RoutingHeader
	keys := envoy.Config.Affinity.KeysEnv
	if envoy.SessionHeader != header || !slices.Contains(envoy.Plugin.GetVmConfig().GetEnvironmentVariables().GetHostEnvKeys(), keys) {
		t.Errorf("envoy.yaml: session header %q, host_env_keys %v; want %q and %s", envoy.SessionHeader,
			envoy.Plugin.GetVmConfig().GetEnvironmentVariables().GetHostEnvKeys(), header, keys)
	}
	var digests, images []string
	for _, c := range gatewayPlugins {
		if !jsonEqual(t, []byte(c.ConfigJSON), envoyJSON) {
			t.Errorf("%s: pluginConfig %s\ndiffers from envoy.yaml's configuration %s", c.Object, c.ConfigJSON, envoyJSON)
		}
		spec := &c.Object.Value.(*extensionsv1alpha1.WasmPlugin).Spec
		digests = append(digests, spec.GetSha256())
		images = append(images, strings.TrimPrefix(spec.GetUrl(), "oci://"))
	}
	for _, c := range eg {
		if !jsonEqual(t, []byte(c.ConfigJSON), envoyJSON) {
			t.Errorf("%s: config %s\ndiffers from envoy.yaml's configuration %s", c.Policy, c.ConfigJSON, envoyJSON)
		}
		if !slices.Contains(c.Wasm.Env.HostKeys, keys) {
			t.Errorf("%s: env.hostKeys %v lacks %s", c.Policy, c.Wasm.Env.HostKeys, keys)
		}
		for _, r := range c.Routes {
			if got := *r.Spec.Rules[0].SessionPersistence.SessionName; got != header {
				t.Errorf("HTTPRoute %s: sessionName %q, want %q", r.Name, got, header)
			}
		}
		digests = append(digests, *c.Wasm.Code.Image.SHA256)
		images = append(images, c.Wasm.Code.Image.URL)
	}
	all := strings.Join(images, " ") + " " + strings.Join(digests, " ")
	slices.Sort(images)
	slices.Sort(digests)
	if len(slices.Compact(images)) != 1 || len(slices.Compact(digests)) != 1 {
		t.Errorf("the targets pull different modules (images, then digests): %s", all)
	}
	for _, c := range gatewayPlugins {
		if a := c.Config.Affinity; a.RoutingHeader != header || a.KeysEnv != keys {
			t.Errorf("%s: routing header %q, keys %s", c.Object, a.RoutingHeader, a.KeysEnv)
		}
	}
}
