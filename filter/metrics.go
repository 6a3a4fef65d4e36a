package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
)

// Metric names, as Envoy shows them (prefixed "wasmcustom."), follow from the outcomes' own names; README.md
// documents each.

// cookieMetric names the counter of a cookie outcome: "chips.cookies_rewritten", "chips.cookies_skipped_selection"…
func cookieMetric(o rewrite.Outcome) string { return "chips.cookies_" + o.String() }

// verdictMetric names the counter of a request's affinity verdict: "chips.affinity_honoured",
// "chips.affinity_rejected_tampered"…
func verdictMetric(v affinity.Verdict) string {
	if v.Rejected() {
		return "chips.affinity_rejected_" + v.String()
	}
	return "chips.affinity_" + v.String()
}

// actionMetric names the counter of an emitted affinity cookie: "chips.affinity_issued"…
func actionMetric(a affinity.Action) string { return "chips.affinity_" + a.String() }

// metrics holds the counters defined once per plugin, each array indexed by what it counts. Envoy shares a stat of
// the same name across its worker VMs.
type metrics struct {
	cookies [rewrite.Outcomes]proxywasm.MetricCounter
	// verdicts is indexed by affinity.Verdict (Absent unused), actions by affinity.Action (Keep unused).
	verdicts [affinity.RejectedFromFuture + 1]proxywasm.MetricCounter
	actions  [affinity.Refresh + 1]proxywasm.MetricCounter
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
	m := &metrics{}
	for o := range m.cookies {
		m.cookies[o] = proxywasm.DefineCounterMetric(cookieMetric(rewrite.Outcome(o)))
	}
	if affinityOn {
		for v := affinity.Honoured; int(v) < len(m.verdicts); v++ {
			m.verdicts[v] = proxywasm.DefineCounterMetric(verdictMetric(v))
		}
		for a := affinity.Issue; int(a) < len(m.actions); a++ {
			m.actions[a] = proxywasm.DefineCounterMetric(actionMetric(a))
		}
	}
	return m
}

// affinityVerdict counts a request's affinity verdict; a request without the cookie counts nothing. The methods
// of a nil *metrics (a host without custom metrics) do nothing.
func (m *metrics) affinityVerdict(v affinity.Verdict) {
	if m != nil && v != affinity.Absent && int(v) < len(m.verdicts) {
		m.verdicts[v].Increment(1)
	}
}

// affinityAction counts an emitted affinity cookie by why it was emitted.
func (m *metrics) affinityAction(a affinity.Action) {
	if m != nil && a != affinity.Keep && int(a) < len(m.actions) {
		m.actions[a].Increment(1)
	}
}

// add publishes a response's tallies: one host call per non-zero counter rather than one per cookie.
func (m *metrics) add(c *rewrite.Counts) {
	if m == nil {
		return
	}
	for o, n := range c {
		if n > 0 {
			m.cookies[o].Increment(uint64(n))
		}
	}
}
