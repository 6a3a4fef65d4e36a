package main

import (
	"strings"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// Affinity is refused before anything starts, on each subcommand, with one line that says why and what to use.
func TestPlatformGCPRefusesAffinity(t *testing.T) {
	wasm := testwasm.Filter(t)
	const want = "wasmhost: platform gcp-service-extensions: config: affinity.enabled: the load balancer routes requests itself"
	for _, args := range [][]string{
		{"replay", "--wasm", wasm},
		{"check", "--wasm", wasm},
		{"serve", "--wasm", wasm, "--upstream", "http://127.0.0.1:9"},
	} {
		args = append(args, "--platform", "gcp-service-extensions", "--config", "../../../testdata/config/affinity.json")
		code, out, errs := runCmd(t, "", args...)
		if code != exitUsage || out != "" || !strings.HasPrefix(errs, want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", args[0], code, out, errs)
		}
	}
	code, _, errs := runCmd(t, "", "replay", "--wasm", wasm, "--platform", "gcp")
	if code != exitUsage || !strings.Contains(errs, `platform: want one of envoy, gcp-service-extensions, got "gcp"`) {
		t.Errorf("unknown platform: exit %d, stderr %q", code, errs)
	}
}

func TestCheckPlatformGCP(t *testing.T) {
	wasm := testwasm.Filter(t)
	code, out, errs := runCmd(t, "", "check", "--wasm", wasm, "--cache-dir", cacheDir, "--platform", "gcp-service-extensions",
		"--config", "../../../testdata/config/gms.json")
	if code != 0 || !strings.Contains(out, "platform:     gcp-service-extensions\n") || !strings.Contains(out, "of 5242880 bytes with the configuration") ||
		!strings.Contains(out, "loaded and configured in this host under gcp-service-extensions's limits") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
}
