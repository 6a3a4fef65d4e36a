package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
)

// pluginContext parses the configuration once and hands the immutable result to every stream.
type pluginContext struct {
	types.DefaultPluginContext
	cfg       *config.Config
	metrics   *metrics
	rewritten rewrite.Buffer
}

// OnPluginStart refuses a bad configuration: Envoy then rejects the listener update (or fails start-up), which is
// far better than a filter that silently does nothing because of a typo.
func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("chips: reading plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	cfg, err := config.Parse(data, nil)
	if err != nil {
		proxywasm.LogCriticalf("chips: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	p.metrics = defineMetrics(cfg.Affinity.Enabled)
	proxywasm.LogInfof("chips: started (same_site=%s partitioned=%t dry_run=%t affinity=%t)",
		cfg.Cookies.SameSite, cfg.Cookies.Partitioned, cfg.DryRun, cfg.Affinity.Enabled)
	return types.OnPluginStartStatusOK
}

// NewHttpContext starts the per-stream state.
func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{cfg: p.cfg, metrics: p.metrics, rewritten: &p.rewritten}
}
