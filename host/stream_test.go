package host

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run SDK-based Go guests (host/testdata/guests) through the host, the way the real filter runs.

// headersRun sends one request and one response through the headers guest and returns the response headers the
// plugin leaves.
func headersRun(t *testing.T, h *Host, path string, resp [][2]string) (*Stream, [][2]string) {
	t.Helper()
	s := newStream(t, h)
	if v := s.OnRequestHeaders(reqHeaders(path, [2]string{"cookie", "c=1"}), true); v.Err != nil || v.Local != nil {
		t.Fatalf("request verdict %+v", v)
	}
	if v := s.OnResponseHeaders(resp, false); v.Err != nil || v.Local != nil {
		t.Fatalf("response verdict %+v", v)
	}
	return s, s.ResponseHeaders()
}

func TestHeadersThroughGuest(t *testing.T) {
	h, _ := newHost(t, Options{Module: guest(t, "headers")})
	upstream := respHeaders([2]string{"set-cookie", "a=1; Path=/"}, [2]string{"via", "1.1 up"}, [2]string{"set-cookie", "b=2"})

	cases := []struct {
		path string
		want [][2]string
	}{
		{"/none", upstream},
		{"/add", [][2]string{
			{":status", "200"}, {":pseudo", "p"}, {"set-cookie", "a=1; Path=/"}, {"via", "1.1 up,wasm"},
			{"set-cookie", "b=2"}, {"set-cookie", "c=3"},
		}},
		{"/replace", [][2]string{{":status", "200"}, {"via", "1.1 up"}, {"set-cookie", "only=1"}}},
		{"/remove", [][2]string{{":status", "200"}, {"via", "1.1 up"}}},
		{"/setpairs", [][2]string{
			{":status", "201"}, {"x-b", "2"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"content-type", "text/x"},
		}},
		{"/get", append(slices.Clone(upstream),
			[2]string{"x-first-cookie", "a=1; Path=/"},
			[2]string{"x-count", "4"},
			[2]string{"x-missing-err", "error status returned by host: not found"},
			[2]string{"x-req-err", "error status returned by host: bad argument"},
			[2]string{"x-req-pairs-err", "error status returned by host: not found"},
			[2]string{"x-req-add-err", "error status returned by host: bad argument"},
		)},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			s, got := headersRun(t, h, c.path, slices.Clone(upstream))
			s.Close()
			if !slices.Equal(got, c.want) {
				t.Errorf("response headers\n got %q\nwant %q", got, c.want)
			}
		})
	}
	if st := h.Stats(); st.Traps != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestRequestHeadersThroughGuest(t *testing.T) {
	h, _ := newHost(t, Options{Module: guest(t, "headers")})
	s := newStream(t, h)
	in := reqHeaders("/request", [2]string{"cookie", "c=1"}, [2]string{"accept", "*/*"})
	s.OnRequestHeaders(in, true)
	want := [][2]string{
		{":method", "GET"}, {":authority", "a.example,extra"}, {":scheme", "https"}, {":path", "/rewritten"},
		{"accept", "*/*"}, {"x-added", "1"},
	}
	if got := s.RequestHeaders(); !slices.Equal(got, want) {
		t.Errorf("request headers\n got %q\nwant %q", got, want)
	}
	if !slices.Equal(in, reqHeaders("/request", [2]string{"cookie", "c=1"}, [2]string{"accept", "*/*"})) {
		t.Error("the caller's slice was modified")
	}
	s.Close()

	s = newStream(t, h)
	s.OnRequestHeaders(reqHeaders("/request-setpairs"), true)
	want = [][2]string{{":method", "POST"}, {"x-z", "1"}, {"x-forwarded-for", "a,b"}}
	if got := s.RequestHeaders(); !slices.Equal(got, want) {
		t.Errorf("request headers after set pairs\n got %q\nwant %q", got, want)
	}
	s.Close()
}

// In proxy_on_log Envoy offers the final headers read-only.
func TestLogPhaseThroughGuest(t *testing.T) {
	h, rec := newHost(t, Options{Module: guest(t, "headers")})
	s, _ := headersRun(t, h, "/log", respHeaders())
	s.Close()
	want := "log-phase path=/log/nil status=200/nil add=error status returned by host: bad argument"
	if got := rec.messages("log-phase"); len(got) != 1 || !strings.Contains(got[0], want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}

// props collects the "x-prop" reports of the properties guest into path -> value ("err:..." for errors).
func props(t *testing.T, h [][2]string, name string) map[string]string {
	out := map[string]string{}
	for _, v := range values(h, name) {
		path, value, _ := strings.Cut(v, "=")
		if !strings.HasPrefix(value, "err:") {
			b, err := hex.DecodeString(value)
			if err != nil {
				t.Fatal(err)
			}
			value = string(b)
		}
		out[path] = value
	}
	return out
}

func le64(v int64) string { return string(binary.LittleEndian.AppendUint64(nil, uint64(v))) }

func TestPropertiesThroughGuest(t *testing.T) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	h, rec := newHost(t, Options{
		Module: guest(t, "properties"), PluginName: "chips", RootID: "r", VMID: "v", NodeID: "ingress-1",
		ClusterName: "chat", Now: func() time.Time { return start },
	})
	s, err := h.NewStream(t.Context(), StreamInfo{
		SourceAddress: "192.0.2.10:40000", DestinationAddress: "[::1]:8443", Protocol: "HTTP/2",
		TLS: true, TLSVersion: "TLSv1.3", ServerName: "chat.example", ConnectionID: 42,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.OnRequestHeaders(reqHeaders("/chat?x=1#frag",
		[2]string{"cookie", "a=1"}, [2]string{"cookie", "b=2"}, [2]string{"accept", "text/html"},
		[2]string{"user-agent", "UA/1"}, [2]string{"x-request-id", "rid-1"}, [2]string{"content-length", "12"}), false)
	req := s.RequestHeaders()

	root := props(t, req, "x-root-prop")
	for path, want := range map[string]string{
		"plugin_name": "chips", "plugin_root_id": "r", "plugin_vm_id": "v", "xds/node/id": "ingress-1",
		"request/path":   "err:error status returned by host: not found",
		"source/address": "err:error status returned by host: not found",
	} {
		if root[path] != want {
			t.Errorf("root %s = %q, want %q", path, root[path], want)
		}
	}
	if v := values(req, "x-root-prop"); !slices.Contains(v, "set root_key=err:error status returned by host: not found") {
		t.Errorf("set_property in the root context: %q", v)
	}

	got := props(t, req, "x-prop")
	notFound := "err:error status returned by host: not found"
	for path, want := range map[string]string{
		"request/path": "/chat?x=1#frag", "request/url_path": "/chat", "request/host": "a.example",
		"request/scheme": "https", "request/method": "GET", "request/query": "x=1", "request/id": "rid-1",
		"request/useragent": "UA/1", "request/referer": notFound, "request/protocol": "HTTP/2",
		"request/headers/cookie": "a=1,b=2", "request/headers/Accept": "text/html",
		"request/size": le64(12), "request/duration": notFound,
		"source/address": "192.0.2.10:40000", "source/port": le64(40000),
		"destination/address": "[::1]:8443", "destination/port": le64(8443),
		"connection/mtls": "\x00", "connection/requested_server_name": "chat.example",
		"connection/tls_version": "TLSv1.3", "connection/id": le64(42), "connection_id": le64(42),
		"upstream/address": notFound, "response/code": notFound, "xds/node/id": "ingress-1",
		"xds/cluster_name": "chat", "xds/route_name": notFound, "node/id": notFound, "plugin_name": "chips",
		"request":          "err:unknown status code: 3",
		"no_such_property": notFound, "my_key": "my value", "filter_state/wasm.my_key": "my value",
	} {
		if got[path] != want {
			t.Errorf("request phase %s = %q, want %q", path, got[path], want)
		}
	}

	// request.headers is the whole map: one entry per name, in order, repeated values joined with ",". By the
	// time the plugin read it, it had added its x-root-prop reports and the first x-prop ones.
	all := parsePairs(nil, []byte(got["request/headers"]))
	var names []string
	for _, p := range all {
		names = append(names, p[0])
	}
	wantNames := []string{":method", ":path", ":authority", ":scheme", "cookie", "accept", "user-agent", "x-request-id", "content-length", "x-root-prop", "x-prop"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("request.headers names %q\nwant %q", names, wantNames)
	}
	for _, p := range all {
		if p[0] == "cookie" && p[1] != "a=1,b=2" || p[0] == "x-root-prop" && strings.Count(p[1], ",") < 6 {
			t.Errorf("request.headers entry %q", p)
		}
	}

	s.SetUpstreamAddress("10.1.2.3:8080")
	s.OnResponseHeaders(respHeaders([2]string{"set-cookie", "s=1"}, [2]string{"set-cookie", "t=2"}), true)
	got = props(t, s.ResponseHeaders(), "x-prop")
	for path, want := range map[string]string{
		// The request headers are gone once proxy_on_request_headers returned Continue (Envoy nulls them).
		"request/path": notFound, "request/headers/cookie": notFound, "request/headers": "\x00\x00\x00\x00",
		"request/time": le64(start.UnixNano()), "response/code": le64(200), "response/code_details": "via_upstream",
		"response/headers/set-cookie": "s=1,t=2", "upstream/address": "10.1.2.3:8080", "upstream/port": le64(8080),
		"my_key": "my value", "my/nested": notFound,
	} {
		if got[path] != want {
			t.Errorf("response phase %s = %q, want %q", path, got[path], want)
		}
	}
	s.Close()
	// In the access log the request headers are readable again, and the duration is known.
	logs := rec.messages("log-phase")
	if len(logs) != 1 || !strings.Contains(logs[0], "request/path="+hex.EncodeToString([]byte("/chat?x=1#frag"))) ||
		!strings.Contains(logs[0], "request/duration="+hex.EncodeToString([]byte(le64(0)))) ||
		!strings.Contains(logs[0], "response/code="+hex.EncodeToString([]byte(le64(200)))) {
		t.Errorf("log phase: %q", logs)
	}
}

func TestMetricsThroughGuest(t *testing.T) {
	h, _ := newHost(t, Options{Module: guest(t, "metrics"), PoolSize: 3})
	const streams = 30
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newStream(t, h)
			defer s.Close()
			s.OnRequestHeaders(reqHeaders("/"), true)
			s.OnResponseHeaders(respHeaders(), true)
			if v := values(s.ResponseHeaders(), "x-same-id"); !slices.Equal(v, []string{"true"}) {
				t.Errorf("x-same-id = %q", v)
			}
		}()
	}
	wg.Wait()
	want := []Metric{
		{Name: "test.header_count", Kind: MetricHistogram, Value: 4, Count: streams, Sum: 4 * streams},
		{Name: "test.inflight", Kind: MetricGauge, Value: 0},
		{Name: "test.requests", Kind: MetricCounter, Value: streams},
	}
	if got := h.Metrics(); !slices.Equal(got, want) {
		t.Errorf("metrics %+v\nwant %+v", got, want)
	}
	if h.Stats().Instances > 3 {
		t.Errorf("instances %d > PoolSize", h.Stats().Instances)
	}
}

// Shared data is one store for all instances: concurrent CAS increments from several instances lose no update.
func TestSharedDataThroughGuest(t *testing.T) {
	h, _ := newHost(t, Options{Module: guest(t, "shareddata"), PoolSize: 4})
	// A write with cas 0 is unconditional (Envoy's rule), and the guest's first write finds no key and so no cas:
	// two instances starting at once would both store 1. With the key present every write is compared.
	h.shared.set("hits", []byte("0"), 0)
	const streams = 40
	seen := make(chan int, streams)
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newStream(t, h)
			defer s.Close()
			s.OnRequestHeaders(reqHeaders("/"), true)
			s.OnResponseHeaders(respHeaders(), true)
			hdrs := s.ResponseHeaders()
			n, err := strconv.Atoi(values(hdrs, "x-hits")[0])
			if err != nil {
				t.Error(err)
			}
			seen <- n
			if got := values(hdrs, "x-stale"); !slices.Equal(got, []string{"error status returned by host: cas mismatch"}) {
				t.Errorf("x-stale = %q", got)
			}
		}()
	}
	wg.Wait()
	close(seen)
	var all []int
	for n := range seen {
		all = append(all, n)
	}
	slices.Sort(all)
	for i, n := range all {
		if n != i+1 {
			t.Fatalf("counts %v: every increment must be seen exactly once", all)
		}
	}
}

func TestLocalResponseThroughGuest(t *testing.T) {
	h, _ := newHost(t, Options{Module: guest(t, "localresponse")})
	s := newStream(t, h)
	v := s.OnRequestHeaders(reqHeaders("/deny"), true)
	if v.Local == nil || v.Err != nil {
		t.Fatalf("verdict %+v", v)
	}
	want := &LocalResponse{
		Status: 403, Body: []byte("no entry"), GRPCStatus: -1,
		Headers: [][2]string{{"x-reason", "denied"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"content-type", "text/plain"}},
	}
	if v.Local.Status != want.Status || string(v.Local.Body) != string(want.Body) || !slices.Equal(v.Local.Headers, want.Headers) || v.Local.GRPCStatus != -1 {
		t.Errorf("local response %+v, want %+v", v.Local, want)
	}
	// As in Envoy the local response goes through the plugin's response callback too; here it lets it pass.
	if v := s.OnResponseHeaders(respHeaders(), false); v.Local != nil || v.Err != nil {
		t.Errorf("response verdict %+v", v)
	}
	s.Close()

	s = newStream(t, h)
	s.OnRequestHeaders(reqHeaders("/deny-response"), true)
	v = s.OnResponseHeaders(respHeaders(), true)
	if v.Local == nil || v.Local.Status != 502 || len(v.Local.Headers) != 0 || v.Local.Body != nil {
		t.Errorf("response-phase local response %+v", v.Local)
	}
	s.Close()
	if got := h.Stats().LocalResponses; got != 2 {
		t.Errorf("LocalResponses = %d", got)
	}
}

func TestLifecycleThroughGoGuest(t *testing.T) {
	h, rec := newHost(t, Options{Module: guest(t, "lifecycle")})
	s := newStream(t, h)
	s.OnRequestHeaders(reqHeaders("/"), false)
	s.OnRequestBody([]byte("x"), true)
	s.OnResponseHeaders(respHeaders(), false)
	s.OnResponseBody([]byte("y"), true)
	s.Close()
	var got []string
	for _, m := range rec.messages("cb=") {
		_, after, _ := strings.Cut(m, "cb=")
		got = append(got, strings.Fields(after)[0])
	}
	want := []string{"plugin_context", "vm_start", "plugin_start", "http_context", "request_headers", "request_body",
		"response_headers", "response_body", "stream_done"}
	if !slices.Equal(got, want) {
		t.Errorf("callbacks %q\nwant      %q", got, want)
	}
}

func TestBodiesThroughGuest(t *testing.T) {
	h, _ := newHost(t, Options{Module: guest(t, "lifecycle")})
	s := newStream(t, h)
	s.OnRequestHeaders(reqHeaders("/body"), false)
	v := s.OnRequestBody([]byte("hello "), false)
	if !v.Paused {
		t.Fatalf("first chunk: %+v (the plugin pauses to buffer)", v)
	}
	v = s.OnRequestBody([]byte("world"), true)
	if v.Paused || v.Err != nil || string(s.RequestBody()) != "HELLO WORLD" {
		t.Fatalf("last chunk: %+v body %q", v, s.RequestBody())
	}
	s.OnResponseHeaders(respHeaders(), false)
	s.OnResponseBody([]byte("abc"), false)
	if got := string(s.ResponseBody()); got != ">abc!" {
		t.Errorf("response body %q", got)
	}
	s.OnResponseBody([]byte("def"), true)
	if got := string(s.ResponseBody()); got != ">def!" {
		t.Errorf("response body %q (each chunk separately when the plugin continues)", got)
	}
	s.Close()
}

func TestTicksAndQueuesThroughGuest(t *testing.T) {
	// The host's clock decides when a tick is due: moving it past the 1 ms period makes one due at the next close
	// of a stream, when ticks run.
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h, rec := newHost(t, Options{Module: guest(t, "lifecycle"), PluginConfig: []byte("tick"), Now: clock})
	mu.Lock()
	now = now.Add(5 * time.Millisecond)
	mu.Unlock()
	s := newStream(t, h)
	s.OnRequestHeaders(reqHeaders("/enqueue"), true)
	s.Close()
	if got := rec.messages("queue item=hello"); len(got) != 1 {
		t.Errorf("queue notifications: %q", got)
	}
	var ticks, items int64
	for _, m := range h.Metrics() {
		switch m.Name {
		case "lifecycle.ticks":
			ticks = m.Value
		case "lifecycle.queue_items":
			items = m.Value
		}
	}
	if ticks < 1 || items != 1 {
		t.Errorf("ticks %d, queue items %d", ticks, items)
	}
}
