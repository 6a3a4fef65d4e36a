package serve

import (
	"context"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// Filter is what the proxy needs of the wasm host: one stream per request. *host.Host implements it; the stream's
// types (host.StreamInfo, host.Verdict, host.LocalResponse) are the host's own, so nothing is copied between them.
type Filter interface {
	// NewStream starts the filter's side of one HTTP stream. It may block while every filter instance is busy; the
	// context is the request's, so a client that goes away stops the wait.
	NewStream(ctx context.Context, info host.StreamInfo) (*host.Stream, error)
}

// filterStream is the part of *host.Stream the proxy calls, in Envoy's order: request headers, then (once the
// upstream is chosen) the upstream address, then response headers, then Close. Header lists are ordered pairs with
// lowercase names; requests carry :method, :path, :authority and :scheme first, responses carry :status first.
// It is an interface so that the proxy's own tests can drive it with a fake.
type filterStream interface {
	OnRequestHeaders(headers [][2]string, endOfStream bool) host.Verdict
	RequestHeaders() [][2]string
	SetUpstreamAddress(addr string)
	OnResponseHeaders(headers [][2]string, endOfStream bool) host.Verdict
	ResponseHeaders() [][2]string
	Close()
}

// openStream starts a filter stream; New makes one from Options.Filter.
type openStream func(ctx context.Context, info host.StreamInfo) (filterStream, error)

func streamsOf(f Filter) openStream {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, info host.StreamInfo) (filterStream, error) {
		s, err := f.NewStream(ctx, info)
		if err != nil {
			return nil, err // a nil *host.Stream must not become a non-nil interface
		}
		return s, nil
	}
}

// filterMetrics is what the admin page reads from a filter that has counters: *host.Host has the host's own
// (Stats) and the plugin's (Metrics).
type filterMetrics interface {
	Stats() host.Stats
	Metrics() []host.Metric
	FailurePolicy() host.FailurePolicy
}
