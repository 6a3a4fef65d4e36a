package deploy

import (
	"slices"
	"sort"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
)

// envoyGatewayRank is where Envoy Gateway puts each HTTP filter type by default, lowest first (newOrderedHTTPFilter
// in internal/xds/translator/httpfilters.go at v1.9.1, the version go.mod pins; types not listed rank 50 there too).
// v1.3.0, the oldest release this deployment supports, ranks stateful_session 8 and wasm 100: the same relative
// order, which is what matters here. Lua, ext_proc and wasm filters add their index within their type to the rank.
var envoyGatewayRank = map[egv1a1.EnvoyFilter]int{
	egv1a1.EnvoyFilterCustomResponse:     0,
	egv1a1.EnvoyFilterHealthCheck:        1,
	egv1a1.EnvoyFilterFault:              2,
	egv1a1.EnvoyFilterCORS:               3,
	egv1a1.EnvoyFilterCSRF:               4,
	egv1a1.EnvoyFilterHeaderMutation:     5,
	egv1a1.EnvoyFilterExtAuthz:           6,
	egv1a1.EnvoyFilterAPIKeyAuth:         7,
	egv1a1.EnvoyFilterBasicAuth:          8,
	egv1a1.EnvoyFilterOAuth2:             9,
	egv1a1.EnvoyFilterJWTAuthn:           10,
	egv1a1.EnvoyFilterSessionPersistence: 11,
	egv1a1.EnvoyFilterBuffer:             12,
	egv1a1.EnvoyFilterLua:                13,
	egv1a1.EnvoyFilterExtProc:            100,
	egv1a1.EnvoyFilterWasm:               200,
	egv1a1.EnvoyFilterRBAC:               301,
	egv1a1.EnvoyFilterLocalRateLimit:     302,
	egv1a1.EnvoyFilterRateLimit:          303,
	egv1a1.EnvoyFilterRouter:             310,
}

// envoyGatewayFilterOrder returns the order in which Envoy Gateway chains filters of the given types (one filter of
// each): sorted by default rank, then moved by each FilterPosition of an EnvoyProxy's spec.filterOrder in turn — the
// filters of the position's type go just before the first filter of its Before type, or just after the last filter
// of its After type; a position whose types are absent changes nothing.
func envoyGatewayFilterOrder(present []egv1a1.EnvoyFilter, positions []egv1a1.FilterPosition) []egv1a1.EnvoyFilter {
	chain := slices.Clone(present)
	rank := func(f egv1a1.EnvoyFilter) int {
		if r, ok := envoyGatewayRank[f]; ok {
			return r
		}
		return 50
	}
	sort.SliceStable(chain, func(i, j int) bool { return rank(chain[i]) < rank(chain[j]) })
	for _, p := range positions {
		i := slices.Index(chain, p.Name)
		if i < 0 {
			continue
		}
		var anchor int
		switch {
		case p.Before != nil:
			anchor = slices.Index(chain, *p.Before)
		case p.After != nil:
			anchor = slices.Index(chain, *p.After)
		default:
			continue
		}
		if anchor < 0 || anchor == i {
			continue
		}
		chain = slices.Delete(chain, i, i+1)
		if i < anchor {
			anchor--
		}
		if p.After != nil {
			anchor++
		}
		chain = slices.Insert(chain, anchor, p.Name)
	}
	return chain
}
