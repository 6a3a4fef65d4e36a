package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/sticky"
)

// Metric names, as Envoy shows them (prefixed "wasmcustom."). README.md documents each.
const (
	metricRewritten        = "chips.cookies_rewritten"
	metricCompliant        = "chips.cookies_compliant"
	metricSkippedSelection = "chips.cookies_skipped_selection"
	metricSkippedUserAgent = "chips.cookies_skipped_user_agent"
	metricMalformed        = "chips.cookies_malformed"

	// Affinity: one of these per request carrying the cookie...
	metricAffinityHonoured            = "chips.affinity_honoured"
	metricAffinityRejectedMalformed   = "chips.affinity_rejected_malformed"
	metricAffinityRejectedTampered    = "chips.affinity_rejected_tampered"
	metricAffinityRejectedExpiredIdle = "chips.affinity_rejected_expired_idle"
	metricAffinityRejectedExpiredLife = "chips.affinity_rejected_expired_life"
	metricAffinityRejectedFromFuture  = "chips.affinity_rejected_from_future"
	// ...and one of these per affinity cookie emitted.
	metricAffinityIssued    = "chips.affinity_issued"
	metricAffinityRepinned  = "chips.affinity_repinned"
	metricAffinityRefreshed = "chips.affinity_refreshed"
)

// metrics holds the counters defined once per plugin. Envoy shares a stat of the same name across its worker VMs.
type metrics struct {
	rewritten, compliant, skippedSelection, skippedUserAgent, malformed proxywasm.MetricCounter

	// verdicts is indexed by sticky.Verdict (Absent unused), actions by sticky.Action (Keep unused).
	verdicts [sticky.RejectedFromFuture + 1]proxywasm.MetricCounter
	actions  [sticky.Refresh + 1]proxywasm.MetricCounter
}

// defineMetrics defines the counters; the affinity ones only when affinity is on, so that a filter without it
// does not show a column of zeros for a feature it does not use.
//
// Some hosts have no custom metrics: Google Cloud Service Extensions answers proxy_define_metric with
// Unimplemented (its plugin tester inherits that answer from proxy-wasm-cpp-host's ContextBase), and the SDK turns
// any failed definition into a panic. Counting is not worth a plugin that refuses to start, so a refusal makes
// every counter a no-op (a nil *metrics) and is logged once, here.
func defineMetrics(affinityOn bool) (defined *metrics) {
	defer func() {
		if r := recover(); r != nil {
			proxywasm.LogWarnf("chips: custom metrics are unavailable on this host, counting nothing: %v", r)
			defined = nil
		}
	}()
	m := &metrics{
		rewritten:        proxywasm.DefineCounterMetric(metricRewritten),
		compliant:        proxywasm.DefineCounterMetric(metricCompliant),
		skippedSelection: proxywasm.DefineCounterMetric(metricSkippedSelection),
		skippedUserAgent: proxywasm.DefineCounterMetric(metricSkippedUserAgent),
		malformed:        proxywasm.DefineCounterMetric(metricMalformed),
	}
	if affinityOn {
		m.verdicts[sticky.Honoured] = proxywasm.DefineCounterMetric(metricAffinityHonoured)
		m.verdicts[sticky.RejectedMalformed] = proxywasm.DefineCounterMetric(metricAffinityRejectedMalformed)
		m.verdicts[sticky.RejectedTampered] = proxywasm.DefineCounterMetric(metricAffinityRejectedTampered)
		m.verdicts[sticky.RejectedExpiredIdle] = proxywasm.DefineCounterMetric(metricAffinityRejectedExpiredIdle)
		m.verdicts[sticky.RejectedExpiredLife] = proxywasm.DefineCounterMetric(metricAffinityRejectedExpiredLife)
		m.verdicts[sticky.RejectedFromFuture] = proxywasm.DefineCounterMetric(metricAffinityRejectedFromFuture)
		m.actions[sticky.Issue] = proxywasm.DefineCounterMetric(metricAffinityIssued)
		m.actions[sticky.Repin] = proxywasm.DefineCounterMetric(metricAffinityRepinned)
		m.actions[sticky.Refresh] = proxywasm.DefineCounterMetric(metricAffinityRefreshed)
	}
	return m
}

// affinityVerdict counts a request's affinity verdict; a request without the cookie counts nothing. The methods
// of a nil *metrics (a host without custom metrics) do nothing.
func (m *metrics) affinityVerdict(v sticky.Verdict) {
	if m != nil && v != sticky.Absent && int(v) < len(m.verdicts) {
		m.verdicts[v].Increment(1)
	}
}

// affinityAction counts an emitted affinity cookie by why it was emitted.
func (m *metrics) affinityAction(a sticky.Action) {
	if m != nil && a != sticky.Keep && int(a) < len(m.actions) {
		m.actions[a].Increment(1)
	}
}

// add publishes a response's tallies: one host call per non-zero counter rather than one per cookie.
func (m *metrics) add(c *rewrite.Counts) {
	if m == nil {
		return
	}
	inc(m.rewritten, c.Rewritten)
	inc(m.compliant, c.Compliant)
	inc(m.skippedSelection, c.SkippedSelection)
	inc(m.skippedUserAgent, c.SkippedUserAgent)
	inc(m.malformed, c.Malformed)
}

func inc(m proxywasm.MetricCounter, n int) {
	if n > 0 {
		m.Increment(uint64(n))
	}
}
