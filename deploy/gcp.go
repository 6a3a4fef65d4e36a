package deploy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// GCPTrafficExtension holds the fields of a Service Extensions LbTrafficExtension that this deployment sets, as the
// YAML of `gcloud service-extensions lb-traffic-extensions import` spells them (the REST resource of
// cloud.google.com/service-extensions/docs/reference/rest). Google publishes no Go type for it that this module can
// use, so the fields are mirrored from that reference and any other field is refused: a misspelt one would
// otherwise be dropped.
type GCPTrafficExtension struct {
	Name                string   `json:"name"`
	Description         string   `json:"description,omitempty"`
	ForwardingRules     []string `json:"forwardingRules"`
	LoadBalancingScheme string   `json:"loadBalancingScheme"`
	ExtensionChains     []struct {
		Name           string `json:"name"`
		MatchCondition struct {
			CelExpression string `json:"celExpression"`
		} `json:"matchCondition"`
		Extensions []struct {
			Name            string   `json:"name"`
			Service         string   `json:"service"`
			SupportedEvents []string `json:"supportedEvents"`
			FailOpen        *bool    `json:"failOpen"`
		} `json:"extensions"`
	} `json:"extensionChains"`
}

// wasmPluginName is the form of a plugin extension's service: a WasmPlugin resource.
var wasmPluginName = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/wasmPlugins/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// DecodeGCPTrafficExtension decodes a traffic extension's YAML strictly.
func DecodeGCPTrafficExtension(file string, data []byte) (*GCPTrafficExtension, error) {
	var e GCPTrafficExtension
	if err := strictYAML(data, &e); err != nil {
		return nil, fmt.Errorf("gcp: %s: %w", file, err)
	}
	return &e, nil
}

// CheckGCP checks the traffic extension and the plugin configuration together: the extension runs a WasmPlugin
// on exactly the header events the filter uses and never fails open; the configuration is accepted by the filter's
// parser and by the gcp-service-extensions platform (no affinity: the load balancer routes); and with the module,
// it fits the platform's quota.
func CheckGCP(e *GCPTrafficExtension, pluginConfig, module []byte) (*config.Config, error) {
	switch e.LoadBalancingScheme {
	case "EXTERNAL_MANAGED", "INTERNAL_MANAGED":
	default:
		return nil, fmt.Errorf("gcp: loadBalancingScheme: want EXTERNAL_MANAGED or INTERNAL_MANAGED (Application Load Balancers), got %q", e.LoadBalancingScheme)
	}
	if e.Name == "" || len(e.ForwardingRules) == 0 || len(e.ExtensionChains) == 0 {
		return nil, errors.New("gcp: name, forwardingRules and extensionChains are required")
	}
	found := false
	for i, ch := range e.ExtensionChains {
		if ch.MatchCondition.CelExpression == "" {
			return nil, fmt.Errorf("gcp: extensionChains[%d].matchCondition.celExpression: missing", i)
		}
		for j, x := range ch.Extensions {
			where := fmt.Sprintf("gcp: extensionChains[%d].extensions[%d]", i, j)
			if !wasmPluginName.MatchString(x.Service) {
				return nil, fmt.Errorf("%s.service: %q; want projects/PROJECT/locations/LOCATION/wasmPlugins/NAME", where, x.Service)
			}
			events := slices.Sorted(slices.Values(x.SupportedEvents))
			if !slices.Equal(events, []string{"REQUEST_HEADERS", "RESPONSE_HEADERS"}) {
				return nil, fmt.Errorf("%s.supportedEvents: %v; want REQUEST_HEADERS and RESPONSE_HEADERS only (the filter reads no bodies, and every event is a callback on the plugin's CPU budget)", where, x.SupportedEvents)
			}
			if x.FailOpen == nil || *x.FailOpen {
				return nil, fmt.Errorf("%s.failOpen: must be false, and written down: a failed plugin would otherwise let cookies through unpartitioned", where)
			}
			found = true
		}
	}
	if !found {
		return nil, errors.New("gcp: no extension runs a WasmPlugin")
	}
	c, err := config.Parse(pluginConfig, nil)
	if err != nil {
		return nil, fmt.Errorf("gcp: plugin-config.json: %w", err)
	}
	p := &host.GCPServiceExtensions
	if err := p.CheckAffinity(c.Affinity.Enabled); err != nil {
		return nil, fmt.Errorf("gcp: plugin-config.json: %w", err)
	}
	if err := p.CheckSize(len(module), len(pluginConfig)); err != nil {
		return nil, fmt.Errorf("gcp: %w", err)
	}
	return c, nil
}
