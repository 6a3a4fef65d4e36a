package serve

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// adminHandler serves the admin listener: /stats (Prometheus text exposition 0.0.4), /healthz and /config, and Go's
// profiler under /debug/pprof/ when Options.Pprof is set.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", s.handleStats)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /config", s.handleConfig)
	pages := "/stats /healthz /config"
	if s.opts.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		pages += " /debug/pprof/"
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "wasmhost admin: %s\n", pages)
	})
	return mux
}

// sample is one metric as /stats shows it: the host's metric type, with the help text and labels Prometheus adds.
type sample struct {
	host.Metric
	Help   string      // optional one-line description
	Labels [][2]string // optional label pairs
}

func counter(name, help string, v int64, labels ...[2]string) sample {
	return sample{Metric: host.Metric{Name: name, Kind: host.MetricCounter, Value: v}, Help: help, Labels: labels}
}

func gauge(name, help string, v int64, labels ...[2]string) sample {
	return sample{Metric: host.Metric{Name: name, Kind: host.MetricGauge, Value: v}, Help: help, Labels: labels}
}

// samples returns the proxy's own metrics, then the host's counters and the plugin's metrics (as Envoy names them,
// "wasmcustom.<name>") when the filter has them, as /stats shows them.
func (s *Server) samples() []sample {
	var m []sample
	for _, u := range s.bal.ups {
		m = append(m, counter("wasmhost_requests_total", "Requests sent to each upstream, retries included.",
			u.requests.Load(), [2]string{"upstream", u.addr}))
	}
	for _, u := range s.bal.ups {
		up := int64(0)
		if s.bal.healthy(u) {
			up = 1
		}
		m = append(m, gauge("wasmhost_upstream_up", "1 when the upstream is in rotation, 0 while marked down.",
			up, [2]string{"upstream", u.addr}))
	}
	m = append(m,
		counter("wasmhost_upstream_errors_total", "Upstream requests that failed (refused connections included).",
			s.upstreamErrors.Load()),
		counter("wasmhost_no_healthy_upstream_total", "Requests answered 503 because no upstream was healthy.",
			s.noUpstream.Load()),
		counter("wasmhost_local_responses_total", "Responses produced by the filter instead of an upstream.",
			s.localResponses.Load()),
		counter("wasmhost_filter_errors_total", "Filter callbacks that failed and were handled by the failure policy.",
			s.filterErrors.Load()),
		gauge("wasmhost_active_streams", "Requests in flight.", s.active.Load()),
	)
	if s.filterMetrics != nil {
		m = append(m, filterSamples(s.filterMetrics)...)
	}
	return m
}

// filterSamples are the host's counters and the plugin's metrics.
func filterSamples(f filterMetrics) []sample {
	st := f.Stats()
	m := []sample{
		counter("wasmhost_streams_total", "Streams run through the plugin.", int64(st.Streams)),
		counter("wasmhost_guest_failures_total", "Plugin failures (traps, panics, exits), by failure policy.",
			int64(st.Traps), [2]string{"policy", f.FailurePolicy().String()}),
		counter("wasmhost_guest_fail_open_total", "Streams let through unchanged after a plugin failure.",
			int64(st.FailOpen)),
		counter("wasmhost_guest_fail_closed_total", "Streams answered 503 after a plugin failure.",
			int64(st.FailClosed)),
		counter("wasmhost_instance_reloads_total", "Instances discarded after a failure and replaced.",
			int64(st.Reloads)),
		counter("wasmhost_plugin_local_responses_total", "Local responses the plugin sent.",
			int64(st.LocalResponses)),
		gauge("wasmhost_instances", "Plugin instances alive.", st.Instances),
		gauge("wasmhost_guest_memory_bytes", "Linear memory of the live instances, added up.", st.GuestMemoryBytes),
	}
	for _, pm := range f.Metrics() {
		pm.Name = "wasmcustom." + pm.Name
		m = append(m, sample{Metric: pm})
	}
	return m
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	writePrometheus(bw, s.samples())
	bw.Flush()
}

// writePrometheus writes metrics in the Prometheus text exposition format. Names are made Prometheus-safe (every
// character outside [a-zA-Z0-9_:] becomes '_'); samples of one name are grouped under one HELP/TYPE header, in the
// order names first appear.
func writePrometheus(w *bufio.Writer, metrics []sample) {
	type family struct {
		help    string
		kind    host.MetricKind
		samples []sample
	}
	var order []string
	fams := map[string]*family{}
	for _, m := range metrics {
		name := PrometheusName(m.Name)
		f := fams[name]
		if f == nil {
			f = &family{help: m.Help, kind: m.Kind}
			fams[name] = f
			order = append(order, name)
		}
		f.samples = append(f.samples, m)
	}
	for _, name := range order {
		f := fams[name]
		if f.help != "" {
			fmt.Fprintf(w, "# HELP %s %s\n", name, escapeHelp(f.help))
		}
		typ := "summary"
		switch f.kind {
		case host.MetricCounter:
			typ = "counter"
		case host.MetricGauge:
			typ = "gauge"
		}
		fmt.Fprintf(w, "# TYPE %s %s\n", name, typ)
		for _, m := range f.samples {
			if f.kind == host.MetricHistogram {
				writeSample(w, name+"_sum", m.Labels, strconv.FormatUint(m.Sum, 10))
				writeSample(w, name+"_count", m.Labels, strconv.FormatUint(m.Count, 10))
				continue
			}
			writeSample(w, name, m.Labels, strconv.FormatInt(m.Value, 10))
		}
	}
}

func writeSample(w *bufio.Writer, name string, labels [][2]string, value string) {
	w.WriteString(name)
	if len(labels) > 0 {
		w.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(PrometheusName(l[0]))
			w.WriteString(`="`)
			w.WriteString(escapeLabel(l[1]))
			w.WriteByte('"')
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(value)
	w.WriteByte('\n')
}

// PrometheusName maps a metric name such as "wasmcustom.chips.cookies_rewritten" to a valid Prometheus name
// ("wasmcustom_chips_cookies_rewritten").
func PrometheusName(name string) string {
	if name == "" {
		return "_"
	}
	b := []byte(name)
	for i, c := range b {
		ok := c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(v string) string { return labelEscaper.Replace(v) }
func escapeHelp(v string) string  { return helpEscaper.Replace(v) }

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var sb strings.Builder
	healthy := 0
	for _, u := range s.bal.ups {
		state := "down"
		if s.bal.healthy(u) {
			state = "up"
			healthy++
		}
		fmt.Fprintf(&sb, "upstream %s %s\n", u.addr, state)
	}
	// With no upstream in rotation every request gets a 503; say so to whoever probes readiness.
	if healthy == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "unavailable: no healthy upstream\n", sb.String())
		return
	}
	fmt.Fprint(w, "ok\n", sb.String())
}

// EffectiveConfig returns what /config shows: the proxy's settings, Options.Info, and the filter configuration with
// secrets masked.
func (s *Server) EffectiveConfig() map[string]any {
	ups := make([]map[string]string, 0, len(s.bal.ups))
	for _, u := range s.bal.ups {
		ups = append(ups, map[string]string{"url": u.url.String(), "address": u.addr})
	}
	cfg := map[string]any{
		"listen":         s.Addr(),
		"url":            s.URL(),
		"tls":            s.opts.TLS.mode(),
		"upstreams":      ups,
		"routing_header": s.routingHeader,
		"down_for":       s.opts.DownFor.String(),
		"filter":         s.opts.Filter != nil,
	}
	if a := s.AdminAddr(); a != "" {
		cfg["admin"] = a
	}
	for k, v := range s.opts.Info {
		cfg[k] = v
	}
	if len(s.opts.FilterConfig) > 0 {
		cfg["filter_config"] = MaskSecrets(s.opts.FilterConfig)
	}
	return cfg
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(s.EffectiveConfig())
}

// secretFields are JSON object keys whose values never leave the process: the affinity keys seal every session token.
var secretFields = map[string]bool{"keys": true, "key": true, "secret": true, "password": true, "token": true}

// Redacted replaces a secret on the /config page.
const Redacted = "<redacted>"

// MaskSecrets parses a JSON configuration and replaces the value of every secret field (such as affinity.keys) by
// Redacted, element by element for arrays so the number of keys stays visible. A document that does not parse is
// hidden entirely.
func MaskSecrets(config []byte) any {
	var v any
	if err := json.Unmarshal(config, &v); err != nil {
		return Redacted + " (not JSON)"
	}
	return maskValue(v, false)
}

func maskValue(v any, secret bool) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = maskValue(e, secret || secretFields[strings.ToLower(k)])
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = maskValue(e, secret)
		}
		return t
	default:
		if secret {
			return Redacted
		}
		return v
	}
}
