package serve

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// fakeFilter is a deterministic stand-in for the wasm host: it marks requests and responses, appends "; Partitioned"
// to every Set-Cookie, and records what each stream saw so tests can assert the call sequence.
type fakeFilter struct {
	mu      sync.Mutex
	streams []*fakeStream
	// local, when set, decides a local response on the request head.
	local func(head [][2]string) *host.LocalResponse
	// respVerdict, when set, decides the verdict of the response callback (a zero Verdict continues normally).
	respVerdict func(head [][2]string) host.Verdict
	// reqReset makes the request callback ask for a stream reset.
	reqReset bool
	// newErr makes NewStream fail.
	newErr error
	// stats, metrics and policy are what the admin page reads from a filter with counters.
	stats   host.Stats
	metrics []host.Metric
	policy  host.FailurePolicy
}

type fakeStream struct {
	f       *fakeFilter
	info    host.StreamInfo
	mu      sync.Mutex
	events  []string
	reqIn   [][2]string
	reqOut  [][2]string
	reqEOS  bool
	upAddrs []string
	respIn  [][2]string
	respOut [][2]string
	closed  int
}

// NewStream has the signature of the proxy's openStream; install puts the fake in a proxy's place of its filter.
func (f *fakeFilter) NewStream(ctx context.Context, info host.StreamInfo) (filterStream, error) {
	if f.newErr != nil {
		return nil, f.newErr
	}
	s := &fakeStream{f: f, info: info}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	return s, nil
}

// install makes s run f on every stream, and show its counters, instead of its filter's.
func (f *fakeFilter) install(s *Server) {
	s.open = f.NewStream
	s.filterMetrics = f
}

func (f *fakeFilter) Stats() host.Stats                 { return f.stats }
func (f *fakeFilter) Metrics() []host.Metric            { return f.metrics }
func (f *fakeFilter) FailurePolicy() host.FailurePolicy { return f.policy }

func (f *fakeFilter) all() []*fakeStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeStream(nil), f.streams...)
}

func (s *fakeStream) event(e string) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *fakeStream) OnRequestHeaders(h [][2]string, eos bool) host.Verdict {
	s.event("request")
	s.reqIn = append([][2]string(nil), h...)
	s.reqEOS = eos
	if s.f.reqReset {
		return host.Verdict{Reset: true}
	}
	if s.f.local != nil {
		if lr := s.f.local(h); lr != nil {
			return host.Verdict{Local: lr}
		}
	}
	var out [][2]string
	for _, kv := range h {
		if kv[0] == "x-drop-me" {
			continue
		}
		out = append(out, kv)
	}
	s.reqOut = append(out, [2]string{"x-filter-req", "1"})
	return host.Verdict{}
}

func (s *fakeStream) RequestHeaders() [][2]string { return s.reqOut }

func (s *fakeStream) SetUpstreamAddress(addr string) {
	s.event("upstream " + addr)
	s.mu.Lock()
	s.upAddrs = append(s.upAddrs, addr)
	s.mu.Unlock()
}

func (s *fakeStream) OnResponseHeaders(h [][2]string, eos bool) host.Verdict {
	s.event("response")
	s.respIn = append([][2]string(nil), h...)
	if s.f.respVerdict != nil {
		if v := s.f.respVerdict(h); v.Local != nil || v.Reset || v.Err != nil {
			return v
		}
	}
	var out [][2]string
	for _, kv := range h {
		if kv[0] == "set-cookie" {
			kv[1] += "; Partitioned"
		}
		out = append(out, kv)
	}
	up := ""
	if n := len(s.upAddrs); n > 0 {
		up = s.upAddrs[n-1]
	}
	s.respOut = append(out, [2]string{"x-filter-upstream", up})
	return host.Verdict{}
}

func (s *fakeStream) ResponseHeaders() [][2]string { return s.respOut }

func (s *fakeStream) Close() {
	s.event("close")
	s.mu.Lock()
	s.closed++
	s.mu.Unlock()
}

func (s *fakeStream) eventList() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.events, ",")
}

var errNoInstance = errors.New("fake: no instance")
