package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/serve"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// filters are the hosts running build/filter.wasm, one per configuration and Envoy profile, shared by the tests of
// this binary: a host is safe for concurrent streams, and compiling the module once per configuration instead of
// once per test keeps the suite fast. TestMain closes them.
var filters struct {
	mu    sync.Mutex
	hosts map[string]*host.Host
}

// startFilter returns the compiled filter (build/filter.wasm, see testwasm.Filter) running in wasmhost's host with
// config, as the proxy's filter, under the Envoy profile envoy ("": the host's default, the strictest). The failure
// policy is fail-closed, Envoy's default: a broken guest shows up as 503s in the page, never as a silently
// unfiltered response.
func startFilter(t *testing.T, config, envoy string) serve.Filter {
	t.Helper()
	filters.mu.Lock()
	defer filters.mu.Unlock()
	key := envoy + "\x00" + config
	if h, ok := filters.hosts[key]; ok {
		return h
	}
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(context.Background(), host.Options{
		Module:        module,
		PluginConfig:  []byte(config),
		Envoy:         envoy,
		FailurePolicy: host.FailClosed,
		// Compiled code survives between runs (wazero keys it by the module's hash), so only a changed filter pays
		// for compilation.
		CacheDir: filepath.Join(testwasm.RepoRoot(), "build", "e2e", "wazero-cache"),
		Logger:   quiet,
	})
	if err != nil {
		t.Fatalf("e2e: filter with config %s under Envoy profile %q: %v", config, envoy, err)
	}
	if filters.hosts == nil {
		filters.hosts = make(map[string]*host.Host)
	}
	filters.hosts[key] = h
	return h
}

// closeFilters closes the shared hosts; TestMain calls it after the tests.
func closeFilters() {
	filters.mu.Lock()
	defer filters.mu.Unlock()
	for _, h := range filters.hosts {
		h.Close(context.Background())
	}
}
