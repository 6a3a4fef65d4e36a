package main

import (
	"flag"
	"io"
	"strings"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// envoyFlag registers --envoy, the Envoy version whose Wasm host serve, replay and check behave as: its WASI
// answers, its restricted callbacks and its import list. The default is the strictest supported.
func envoyFlag(fs *flag.FlagSet) *string {
	return fs.String("envoy", host.DefaultEnvoy, "behave as the Wasm host of this Envoy `version` (WASI answers, call restrictions, imports);\n"+
		"supported: "+strings.Join(host.SupportedEnvoyVersions(), ", "))
}

// envoyProfile resolves --envoy, or reports a usage error naming the supported versions.
func envoyProfile(stderr io.Writer, fs *flag.FlagSet, version string) (*host.EnvoyProfile, int, bool) {
	p, err := host.EnvoyProfileFor(version)
	if err != nil {
		code, _ := usageError(stderr, fs.Name(), "--envoy: %v", err)
		return nil, code, false
	}
	return p, 0, true
}
