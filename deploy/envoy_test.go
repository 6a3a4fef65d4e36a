package deploy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
)

func loadEnvoy(t *testing.T, data []byte) (*bootstrapv3.Bootstrap, []EnvoyChain, error) {
	t.Helper()
	b, err := LoadEnvoy(data)
	if err != nil {
		return nil, nil, err
	}
	chains, err := CheckEnvoy(b, proxyEnv(t))
	return b, chains, err
}

func TestEnvoyYAML(t *testing.T) {
	b, chains, err := loadEnvoy(t, readRepoFile(t, "deploy/envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(chains) != 1 {
		t.Fatalf("%d chains run the filter, want 1", len(chains))
	}
	ch := chains[0]
	if want := []string{filterWasm, filterStatefulSession, filterRouter}; !slices.Equal(ch.Filters, want) {
		t.Fatalf("filters %v, want %v", ch.Filters, want)
	}
	p := ch.Plugin
	if p.GetFailurePolicy() != wasmv3.FailurePolicy_FAIL_RELOAD {
		t.Errorf("failure_policy %s; the comments in envoy.yaml argue for FAIL_RELOAD", p.GetFailurePolicy())
	}
	vm := p.GetVmConfig()
	if vm.GetRuntime() != "envoy.wasm.runtime.v8" || vm.GetCode().GetLocal().GetFilename() != "build/filter.wasm" {
		t.Errorf("vm_config runtime %q, code %q", vm.GetRuntime(), vm.GetCode().GetLocal().GetFilename())
	}
	if !slices.Equal(vm.GetEnvironmentVariables().GetHostEnvKeys(), []string{keysVar}) {
		t.Errorf("host_env_keys %v", vm.GetEnvironmentVariables().GetHostEnvKeys())
	}
	a := ch.Config.Affinity
	if !a.Enabled || a.KeysEnv != keysVar || a.Sealer == nil {
		t.Errorf("affinity %+v: want on, keys from %s", a, keysVar)
	}
	if ch.SessionHeader != "x-chips-upstream" || a.RoutingHeader != ch.SessionHeader {
		t.Errorf("stateful session header %q, filter routing header %q", ch.SessionHeader, a.RoutingHeader)
	}

	if addr := b.GetAdmin().GetAddress().GetSocketAddress(); addr.GetAddress() != "127.0.0.1" || addr.GetPortValue() != 9901 {
		t.Errorf("admin on %s:%d, want 127.0.0.1:9901", addr.GetAddress(), addr.GetPortValue())
	}
	l := b.GetStaticResources().GetListeners()[0]
	if l.GetAddress().GetSocketAddress().GetPortValue() != 443 {
		t.Errorf("listener port %d", l.GetAddress().GetSocketAddress().GetPortValue())
	}
	tls, ok, err := unpack[*tlsv3.DownstreamTlsContext](l.GetFilterChains()[0].GetTransportSocket().GetTypedConfig())
	if err != nil || !ok {
		t.Fatalf("listener transport socket is not a DownstreamTlsContext: %v", err)
	}
	cert := tls.GetCommonTlsContext().GetTlsCertificates()[0]
	if cert.GetCertificateChain().GetFilename() != "/etc/envoy/tls/tls.crt" || cert.GetPrivateKey().GetFilename() != "/etc/envoy/tls/tls.key" {
		t.Errorf("certificate files %q, %q", cert.GetCertificateChain().GetFilename(), cert.GetPrivateKey().GetFilename())
	}
	c := b.GetStaticResources().GetClusters()[0]
	if n := len(c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()); n != 3 {
		t.Errorf("cluster %s has %d endpoints, want 3", c.GetName(), n)
	}
	if len(c.GetHealthChecks()) == 0 {
		t.Error("cluster has no health check: a dead node would keep its pinned sessions")
	}
}

// The cookie policy is the one documented for GMS in testdata/config/gms.json; a change to either must be made to
// both.
func TestEnvoyCookiesMatchGMSExample(t *testing.T) {
	_, chains, err := loadEnvoy(t, readRepoFile(t, "deploy/envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var envoyCfg, gms struct{ Cookies json.RawMessage }
	if err := json.Unmarshal([]byte(chains[0].ConfigJSON), &envoyCfg); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readRepoFile(t, "testdata/config/gms.json"), &gms); err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, envoyCfg.Cookies, gms.Cookies) {
		t.Fatalf("envoy.yaml cookies %s\ndiffer from testdata/config/gms.json %s", envoyCfg.Cookies, gms.Cookies)
	}
}

// Each case breaks a copy of envoy.yaml in one way and names what the error must point at.
func TestEnvoyYAMLBroken(t *testing.T) {
	good := readRepoFile(t, "deploy/envoy/envoy.yaml")
	hcm := func(r map[string]any) map[string]any {
		return mapAt(t, r, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config")
	}
	httpFilters := func(r map[string]any) []any { return listAt(t, hcm(r), "http_filters") }
	plugin := func(r map[string]any) map[string]any { return mapAt(t, httpFilters(r)[0], "typed_config", "config") }
	editConfig := func(r map[string]any, from, to string) {
		cfg := mapAt(t, plugin(r), "configuration")
		s := cfg["value"].(string)
		if !strings.Contains(s, from) {
			t.Fatalf("configuration has no %q", from)
		}
		cfg["value"] = strings.Replace(s, from, to, 1)
	}
	tests := []struct {
		name string
		edit func(r map[string]any)
		want []string
	}{
		{"stateful_session before wasm", func(r map[string]any) {
			fs := httpFilters(r)
			fs[0], fs[1] = fs[1], fs[0]
		}, []string{"http_filters must be", "got [envoy.filters.http.stateful_session envoy.filters.http.wasm envoy.filters.http.router]"}},
		{"router not last", func(r map[string]any) {
			fs := httpFilters(r)
			fs[1], fs[2] = fs[2], fs[1]
		}, []string{"http_filters must be"}},
		{"no stateful_session with affinity on", func(r map[string]any) {
			hcm(r)["http_filters"] = slices.Delete(httpFilters(r), 1, 2)
		}, []string{"affinity is on but there is no envoy.filters.http.stateful_session"}},
		{"unknown field", func(r map[string]any) { hcm(r)["stat_prefixx"] = "chat" }, []string{"filters[0].typed_config.stat_prefixx", `unknown field "stat_prefixx"`}},
		{"unknown typed_config type", func(r map[string]any) {
			mapAt(t, httpFilters(r)[2], "typed_config")["@type"] = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr"
		}, []string{"http_filters[2].typed_config", "envoy.extensions.filters.http.router.v3.Routr", "not found"}},
		{"schema rule inside a typed_config", func(r map[string]any) { delete(hcm(r), "stat_prefix") }, []string{"HttpConnectionManager", "StatPrefix"}},
		{"bad failure_policy enum", func(r map[string]any) { plugin(r)["failure_policy"] = "FAIL_SOMETIMES" }, []string{"http_filters[0].typed_config.config", "enum", "FAIL_SOMETIMES"}},
		{"no failure_policy", func(r map[string]any) { delete(plugin(r), "failure_policy") }, []string{"failure_policy is not set"}},
		{"FAIL_OPEN with affinity", func(r map[string]any) { plugin(r)["failure_policy"] = "FAIL_OPEN" }, []string{"FAIL_OPEN with affinity on"}},
		{"missing wasm code", func(r map[string]any) { delete(mapAt(t, plugin(r), "vm_config"), "code") }, []string{"vm_config.code: no module"}},
		{"unknown runtime", func(r map[string]any) { mapAt(t, plugin(r), "vm_config")["runtime"] = "envoy.wasm.runtime.v9" }, []string{"vm_config.runtime", "v9"}},
		{"configuration key typo", func(r map[string]any) { editConfig(r, `"same_site"`, `"samesite"`) }, []string{"config: cookies.samesite: unknown key"}},
		{"configuration bad value", func(r map[string]any) { editConfig(r, `"max_idle": "30m"`, `"max_idle": "half an hour"`) }, []string{"config: affinity.max_idle"}},
		{"keys inline", func(r map[string]any) {
			editConfig(r, `"keys_env": "CHIPS_AFFINITY_KEYS"`, `"keys": ["REVNTy1LRVktTk9ULUZPUi1QUk9EVUNUSU9OLVVTRSE="]`)
		}, []string{"keys pasted into a manifest"}},
		{"keys variable not passed to the VM", func(r map[string]any) { delete(mapAt(t, plugin(r), "vm_config"), "environment_variables") },
			[]string{"affinity.keys_env", "CHIPS_AFFINITY_KEYS"}},
		{"keys written into key_values", func(r map[string]any) {
			mapAt(t, plugin(r), "vm_config")["environment_variables"] = map[string]any{
				"key_values": map[string]any{keysVar: "REVNTy1LRVktTk9ULUZPUi1QUk9EVUNUSU9OLVVTRSE="},
			}
		}, []string{"CHIPS_AFFINITY_KEYS should come from Envoy's environment (host_env_keys)"}},
		{"stateful_session with affinity off", func(r map[string]any) {
			editConfig(r, `"enabled": true`, `"enabled": false`)
		}, []string{"affinity off, so nothing removes client-sent x-chips-upstream headers"}},
		{"routing header mismatch", func(r map[string]any) {
			mapAt(t, httpFilters(r)[1], "typed_config", "session_state", "typed_config")["name"] = "x-chips-node"
		}, []string{`session_state header "x-chips-node" differs from the filter's affinity.routing_header "x-chips-upstream"`}},
		{"cookie session state", func(r map[string]any) {
			mapAt(t, httpFilters(r)[1], "typed_config", "session_state")["name"] = "envoy.http.stateful_session.cookie"
		}, []string{"session_state.name: want envoy.http.stateful_session.header"}},
		{"route to an undefined cluster", func(r map[string]any) {
			mapAt(t, hcm(r), "route_config", "virtual_hosts", 0, "routes", 0, "route")["cluster"] = "chat"
		}, []string{`cluster "chat" is not defined`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadEnvoy(t, mutateYAML(t, good, 0, tt.edit))
			wantError(t, err, tt.want...)
			t.Log(err)
		})
	}
}

// Without affinity the filter only partitions cookies, and [wasm, router] is the whole chain.
func TestEnvoyPartitioningOnly(t *testing.T) {
	data := mutateYAML(t, readRepoFile(t, "deploy/envoy/envoy.yaml"), 0, func(r map[string]any) {
		hcm := mapAt(t, r, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config")
		fs := listAt(t, hcm, "http_filters")
		hcm["http_filters"] = []any{fs[0], fs[2]}
		cfg := mapAt(t, fs[0], "typed_config", "config", "configuration")
		cfg["value"] = strings.Replace(cfg["value"].(string), `"enabled": true`, `"enabled": false`, 1)
	})
	_, chains, err := loadEnvoy(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if chains[0].Config.Affinity.Enabled || chains[0].SessionHeader != "" {
		t.Fatalf("affinity %v, session header %q", chains[0].Config.Affinity.Enabled, chains[0].SessionHeader)
	}
}

// The harness itself must not break the file: an unedited round trip still passes.
func TestEnvoyYAMLRoundTrip(t *testing.T) {
	if _, _, err := loadEnvoy(t, mutateYAML(t, readRepoFile(t, "deploy/envoy/envoy.yaml"), 0, func(map[string]any) {})); err != nil {
		t.Fatal(err)
	}
}

// Envoy refuses a bootstrap that sets a key twice; so does LoadEnvoy, although a YAML map cannot express it.
func TestEnvoyYAMLDuplicateKey(t *testing.T) {
	good := string(readRepoFile(t, "deploy/envoy/envoy.yaml"))
	const line = "          stat_prefix: chat\n"
	if !strings.Contains(good, line) {
		t.Fatalf("envoy.yaml has no %q line", line)
	}
	_, _, err := loadEnvoy(t, []byte(strings.Replace(good, line, line+line, 1)))
	wantError(t, err, "stat_prefix", "already set")
}
