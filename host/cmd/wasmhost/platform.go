package main

import (
	"flag"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// platformFlag registers --platform, shared by serve, replay and check, storing its value in p.
func platformFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "platform", "envoy", "the proxy to behave as (`name`): envoy, or gcp-service-extensions (Google Cloud Service\n"+
		"Extensions plugins: no metrics, timers, shared data or callouts; forwarded properties only; 16 MiB per VM;\n"+
		"1 ms of CPU per callback; 1,000 streams per VM; module and configuration within 5 MiB; 500 on failure)")
}

// platformFor resolves --platform and refuses, before anything starts, a filter configuration the platform cannot
// run: affinity where the load balancer routes by itself. cfg nil skips that check.
func platformFor(name string, cfg *config.Config) (*host.Platform, error) {
	p, err := host.PlatformByName(name)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		if err := p.CheckAffinity(cfg.Affinity.Enabled); err != nil {
			return nil, err
		}
	}
	return p, nil
}
