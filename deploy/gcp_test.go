package deploy

import (
	"os"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

func gcpFiles(t *testing.T) (extension, pluginConfig, module []byte) {
	t.Helper()
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	return readRepoFile(t, "deploy/gcp-service-extensions/traffic-extension.yaml"),
		readRepoFile(t, "deploy/gcp-service-extensions/plugin-config.json"), module
}

func checkGCPFiles(extension, pluginConfig, module []byte) error {
	e, err := DecodeGCPTrafficExtension("traffic-extension.yaml", extension)
	if err != nil {
		return err
	}
	_, err = CheckGCP(e, pluginConfig, module)
	return err
}

// The size gate: build/filter.wasm and the deployment's plugin configuration fit Service Extensions' quota for a
// module and its configuration together, with the room left reported.
func TestGCPServiceExtensions(t *testing.T) {
	extension, pluginConfig, module := gcpFiles(t)
	if err := checkGCPFiles(extension, pluginConfig, module); err != nil {
		t.Fatal(err)
	}
	quota := host.GCPServiceExtensions.ModuleQuotaBytes
	used := len(module) + len(pluginConfig)
	t.Logf("module %d bytes + configuration %d bytes = %d of %d (%.0f%%); %d bytes left", len(module), len(pluginConfig), used, quota, 100*float64(used)/float64(quota), quota-used)
}

func TestGCPServiceExtensionsBroken(t *testing.T) {
	extension, pluginConfig, module := gcpFiles(t)
	good := map[string][]byte{"traffic-extension.yaml": extension}
	tests := []brokenCase{
		{"field typo", "traffic-extension.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "extensionChains", 0, "extensions", 0)["failopen"] = false
		}, []string{`unknown field "extensionChains[0].extensions[0].failopen"`}},
		{"fail open", "traffic-extension.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "extensionChains", 0, "extensions", 0)["failOpen"] = true
		}, []string{"failOpen: must be false"}},
		{"body events", "traffic-extension.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "extensionChains", 0, "extensions", 0)["supportedEvents"] = []any{"REQUEST_HEADERS", "RESPONSE_HEADERS", "RESPONSE_BODY"}
		}, []string{"supportedEvents", "want REQUEST_HEADERS and RESPONSE_HEADERS only"}},
		{"callout service", "traffic-extension.yaml", 0, func(r map[string]any) {
			mapAt(t, r, "extensionChains", 0, "extensions", 0)["service"] = "https://www.googleapis.com/compute/v1/projects/p/global/backendServices/callout"
		}, []string{"service:", "wasmPlugins/NAME"}},
		{"classic load balancer", "traffic-extension.yaml", 0, func(r map[string]any) {
			r["loadBalancingScheme"] = "EXTERNAL"
		}, []string{"loadBalancingScheme: want EXTERNAL_MANAGED or INTERNAL_MANAGED"}},
	}
	runBrokenCases(t, good, tests, func(files map[string][]byte) error {
		return checkGCPFiles(files["traffic-extension.yaml"], pluginConfig, module)
	})

	err := checkGCPFiles(extension, []byte(`{"affinity": {"enabled": true, "keys": ["REVNTy1LRVktTk9ULUZPUi1QUk9EVUNUSU9OLVVTRSE="]}}`), module)
	wantError(t, err, "gcp: plugin-config.json: wasmhost: platform gcp-service-extensions: config: affinity.enabled: the load balancer routes requests itself")
	err = checkGCPFiles(extension, []byte(`{"cookies": {"samesite": "None"}}`), module)
	wantError(t, err, "gcp: plugin-config.json: config: cookies.samesite: unknown key")
	err = checkGCPFiles(extension, pluginConfig, make([]byte, host.GCPServiceExtensions.ModuleQuotaBytes))
	wantError(t, err, "gcp: wasmhost: platform gcp-service-extensions: the module (5242880 bytes) and its configuration", "over the quota of 5242880")
}
