package serve

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// adminHandler serves the admin listener: /stats (Prometheus text exposition 0.0.4), /healthz and /config.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", s.handleStats)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /config", s.handleConfig)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "wasmhost admin: /stats /healthz /config\n")
	})
	return mux
}

// Metrics returns the proxy's own metrics followed by the filter's (when it exposes any), as /stats shows them.
func (s *Server) Metrics() []Metric {
	var m []Metric
	for _, u := range s.bal.ups {
		m = append(m, Metric{Name: "wasmhost_requests_total", Help: "Requests sent to each upstream, retries included.",
			Kind: Counter, Labels: [][2]string{{"upstream", u.addr}}, Value: u.requests.Load()})
	}
	for _, u := range s.bal.ups {
		up := int64(0)
		if s.bal.healthy(u) {
			up = 1
		}
		m = append(m, Metric{Name: "wasmhost_upstream_up", Help: "1 when the upstream is in rotation, 0 while marked down.",
			Kind: Gauge, Labels: [][2]string{{"upstream", u.addr}}, Value: up})
	}
	m = append(m,
		Metric{Name: "wasmhost_upstream_errors_total", Help: "Upstream requests that failed (refused connections included).",
			Kind: Counter, Value: s.upstreamErrors.Load()},
		Metric{Name: "wasmhost_no_healthy_upstream_total", Help: "Requests answered 503 because no upstream was healthy.",
			Kind: Counter, Value: s.noUpstream.Load()},
		Metric{Name: "wasmhost_local_responses_total", Help: "Responses produced by the filter instead of an upstream.",
			Kind: Counter, Value: s.localResponses.Load()},
		Metric{Name: "wasmhost_filter_errors_total", Help: "Filter callbacks that failed and were handled by the failure policy.",
			Kind: Counter, Value: s.filterErrors.Load()},
		Metric{Name: "wasmhost_active_streams", Help: "Requests in flight.", Kind: Gauge, Value: s.active.Load()},
	)
	if src, ok := s.opts.Filter.(MetricsSource); ok {
		m = append(m, src.Metrics()...)
	}
	return m
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	WritePrometheus(bw, s.Metrics())
	bw.Flush()
}

// WritePrometheus writes metrics in the Prometheus text exposition format. Names are made Prometheus-safe (every
// character outside [a-zA-Z0-9_:] becomes '_'); samples of one name are grouped under one HELP/TYPE header, in the
// order names first appear.
func WritePrometheus(w *bufio.Writer, metrics []Metric) {
	type family struct {
		help    string
		kind    MetricKind
		samples []Metric
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
		case Counter:
			typ = "counter"
		case Gauge:
			typ = "gauge"
		}
		fmt.Fprintf(w, "# TYPE %s %s\n", name, typ)
		for _, m := range f.samples {
			if f.kind == Histogram {
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
