package serve

import (
	"context"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// HostFilter runs a proxy-wasm plugin hosted by a *host.Host as the proxy's Filter, and exposes the plugin's
// metrics (as Envoy names them, "wasmcustom.<name>") and the host's counters on /stats.
type HostFilter struct {
	Host *host.Host
	// Policy is the host's failure policy, used as the label of wasmhost_guest_failures_total.
	Policy host.FailurePolicy
}

// NewHostFilter returns the Filter for h, which was created with the failure policy p.
func NewHostFilter(h *host.Host, p host.FailurePolicy) *HostFilter {
	return &HostFilter{Host: h, Policy: p}
}

// NewStream implements Filter.
func (f *HostFilter) NewStream(ctx context.Context, info StreamInfo) (FilterStream, error) {
	s, err := f.Host.NewStream(ctx, host.StreamInfo{
		SourceAddress:      info.SourceAddress,
		DestinationAddress: info.DestinationAddress,
		Protocol:           info.Protocol,
		TLS:                info.TLS,
		TLSVersion:         info.TLSVersion,
		ServerName:         info.ServerName,
	})
	if err != nil {
		return nil, err
	}
	return hostStream{s}, nil
}

type hostStream struct{ s *host.Stream }

func verdict(v host.Verdict) Verdict {
	out := Verdict{Err: v.Err, Reset: v.Reset}
	if v.Local != nil {
		out.Local = &LocalResponse{Status: v.Local.Status, Headers: v.Local.Headers, Body: v.Local.Body,
			Details: v.Local.Details}
	}
	return out
}

func (h hostStream) OnRequestHeaders(hd [][2]string, eos bool) Verdict {
	return verdict(h.s.OnRequestHeaders(hd, eos))
}
func (h hostStream) RequestHeaders() [][2]string    { return h.s.RequestHeaders() }
func (h hostStream) SetUpstreamAddress(addr string) { h.s.SetUpstreamAddress(addr) }
func (h hostStream) OnResponseHeaders(hd [][2]string, eos bool) Verdict {
	return verdict(h.s.OnResponseHeaders(hd, eos))
}
func (h hostStream) ResponseHeaders() [][2]string { return h.s.ResponseHeaders() }
func (h hostStream) Close()                       { h.s.Close() }

// Metrics implements MetricsSource: the host's counters, then the plugin's metrics.
func (f *HostFilter) Metrics() []Metric {
	st := f.Host.Stats()
	m := []Metric{
		{Name: "wasmhost_streams_total", Help: "Streams run through the plugin.", Kind: Counter,
			Value: int64(st.Streams)},
		{Name: "wasmhost_guest_failures_total", Help: "Plugin failures (traps, panics, exits), by failure policy.",
			Kind: Counter, Labels: [][2]string{{"policy", f.Policy.String()}}, Value: int64(st.Traps)},
		{Name: "wasmhost_guest_fail_open_total", Help: "Streams let through unchanged after a plugin failure.",
			Kind: Counter, Value: int64(st.FailOpen)},
		{Name: "wasmhost_guest_fail_closed_total", Help: "Streams answered 503 after a plugin failure.",
			Kind: Counter, Value: int64(st.FailClosed)},
		{Name: "wasmhost_instance_reloads_total", Help: "Instances discarded after a failure and replaced.",
			Kind: Counter, Value: int64(st.Reloads)},
		{Name: "wasmhost_plugin_local_responses_total", Help: "Local responses the plugin sent.",
			Kind: Counter, Value: int64(st.LocalResponses)},
		{Name: "wasmhost_instances", Help: "Plugin instances alive.", Kind: Gauge, Value: st.Instances},
	}
	for _, pm := range f.Host.Metrics() {
		sm := Metric{Name: "wasmcustom." + pm.Name, Value: pm.Value}
		switch pm.Kind {
		case host.MetricCounter:
			sm.Kind = Counter
		case host.MetricGauge:
			sm.Kind = Gauge
		default:
			sm.Kind, sm.Count, sm.Sum = Histogram, pm.Count, pm.Sum
		}
		m = append(m, sm)
	}
	return m
}
