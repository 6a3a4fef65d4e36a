package serve

import "context"

// Filter is what the proxy runs on every stream. It is deliberately small so that the proxy can be tested with a
// fake and run with no filter at all; HostFilter adapts a *host.Host to it.
type Filter interface {
	// NewStream starts the filter's side of one HTTP stream. It may block while every filter instance is busy; the
	// context is the request's, so a client that goes away stops the wait.
	NewStream(ctx context.Context, info StreamInfo) (FilterStream, error)
}

// FilterStream is one stream through the filter, called in Envoy's order: request headers, then (once the upstream
// is chosen) the upstream address, then response headers, then Close. Header lists are ordered pairs with lowercase
// names; requests carry :method, :path, :authority and :scheme first, responses carry :status first.
type FilterStream interface {
	// OnRequestHeaders runs the filter on the request head. endOfStream reports a request without a body.
	OnRequestHeaders(headers [][2]string, endOfStream bool) Verdict
	// RequestHeaders returns the request head after the filter's changes.
	RequestHeaders() [][2]string
	// SetUpstreamAddress records the "ip:port" of the upstream that serves the stream (property upstream.address).
	SetUpstreamAddress(addr string)
	// OnResponseHeaders runs the filter on the response head. endOfStream reports a response without a body.
	OnResponseHeaders(headers [][2]string, endOfStream bool) Verdict
	// ResponseHeaders returns the response head after the filter's changes.
	ResponseHeaders() [][2]string
	// Close ends the stream (access log, done, delete) and releases what it holds. It is called exactly once.
	Close()
}

// Verdict is the outcome of a filter callback.
type Verdict struct {
	// Local, when non-nil, is the response the filter wants sent instead of continuing.
	Local *LocalResponse
	// Err reports a guest failure that the filter has already handled by its failure policy; the proxy only logs it.
	Err error
	// Reset asks the proxy to reset the stream (proxy_close_stream): the client's connection or HTTP/2 stream is
	// aborted without a response.
	Reset bool
}

// LocalResponse is a response produced by the filter (proxy_send_local_response) or by its failure policy.
type LocalResponse struct {
	Status  int
	Headers [][2]string
	Body    []byte
	Details string
}

// StreamInfo describes the downstream connection of a stream; it feeds the filter's connection properties.
type StreamInfo struct {
	SourceAddress      string // client "ip:port"
	DestinationAddress string // the listener's "ip:port"
	Protocol           string // "HTTP/1.0", "HTTP/1.1" or "HTTP/2"
	TLS                bool
	TLSVersion         string // "TLSv1.3" (TLS only)
	ServerName         string // SNI (TLS only)
}

// MetricKind is the Prometheus type of a metric.
type MetricKind int

// The kinds a Metric can have.
const (
	Counter MetricKind = iota
	Gauge
	Histogram // exposed as a Prometheus summary without quantiles: <name>_sum and <name>_count
)

// Metric is one sample shown on the admin /stats page.
type Metric struct {
	Name   string      // any characters; the admin page makes it Prometheus-safe (dots become underscores)
	Help   string      // optional one-line description
	Kind   MetricKind  // Counter, Gauge or Histogram
	Labels [][2]string // optional label pairs
	Value  int64       // counters and gauges
	Count  uint64      // histograms: values recorded
	Sum    uint64      // histograms: their sum
}

// MetricsSource is implemented by filters that expose metrics (the plugin's own and the host's); the admin /stats
// page includes them when the filter implements it.
type MetricsSource interface {
	Metrics() []Metric
}
