package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// echoUpstream answers with its name, the request's headers as JSON and the body's length and SHA-256.
func echoUpstream(t *testing.T, name string) (*httptest.Server, *url.URL) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Upstream", name)
		w.Header().Add("Set-Cookie", "a=1; Path=/")
		w.Header().Add("Set-Cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT")
		w.Header().Add("Set-Cookie", "c=3")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{
			Upstream: name, Method: r.Method, Host: r.Host, URI: r.RequestURI, Header: r.Header,
			BodyLen: n, BodySHA: hex.EncodeToString(h.Sum(nil)),
		})
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return srv, u
}

// echoUpstreams starts one echoUpstream per name and returns their URLs in order.
func echoUpstreams(t *testing.T, names ...string) []*url.URL {
	t.Helper()
	var urls []*url.URL
	for _, n := range names {
		_, u := echoUpstream(t, n)
		urls = append(urls, u)
	}
	return urls
}

type echoed struct {
	Upstream string
	Method   string
	Host     string
	URI      string
	Header   http.Header
	BodyLen  int64
	BodySHA  string
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startProxy binds and serves a proxy for the test's lifetime; the cleanup checks that it shut down cleanly.
// startProxy starts a proxy with o; a fake, when given, runs on every stream in place of o.Filter.
func startProxy(t *testing.T, o Options, fake ...*fakeFilter) *Server {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fake {
		f.install(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// stopProxy shuts the proxy down, which waits for every handler to return.
func stopProxy(t *testing.T, p *Server) {
	t.Helper()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func decodeEcho(t *testing.T, body []byte) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("upstream body %q: %v", body, err)
	}
	return e
}

func addrOf(u *url.URL) string { return u.Host }

func TestHeaderFlowThroughFilter(t *testing.T) {
	_, u := echoUpstream(t, "a")
	f := &fakeFilter{}
	p := startProxy(t, Options{Upstreams: []*url.URL{u}}, f)

	resp, body := get(t, nil, p.URL()+"/chat/poll?x=1", "X-Drop-Me", "secret", "X-Multi", "one", "X-Multi", "two",
		"Connection", "close, X-Hop", "X-Hop", "hop", "X-Forwarded-For", "10.9.8.7")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	e := decodeEcho(t, body)
	if e.URI != "/chat/poll?x=1" {
		t.Errorf("upstream URI %q", e.URI)
	}
	if got := e.Header.Get("X-Filter-Req"); got != "1" {
		t.Errorf("filter's request header did not reach the upstream: %q", got)
	}
	if _, ok := e.Header["X-Drop-Me"]; ok {
		t.Error("header removed by the filter reached the upstream")
	}
	if _, ok := e.Header["X-Hop"]; ok {
		t.Error("a header named in Connection reached the upstream")
	}
	if got := e.Header["X-Multi"]; !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("repeated request header: %q", got)
	}
	if got := e.Header.Get("X-Forwarded-For"); got != "10.9.8.7, 127.0.0.1" {
		t.Errorf("x-forwarded-for %q, want the client's address appended", got)
	}
	if got := e.Header.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("x-forwarded-proto %q", got)
	}
	if e.Host != strings.TrimPrefix(p.URL(), "http://") {
		t.Errorf("upstream saw Host %q, want the client's authority", e.Host)
	}
	if got := resp.Header.Get("X-Filter-Upstream"); got != addrOf(u) {
		t.Errorf("x-filter-upstream %q, want %q", got, addrOf(u))
	}

	stopProxy(t, p) // streams close after the response is written: wait for the handlers to return
	ss := f.all()
	if len(ss) != 1 {
		t.Fatalf("%d streams, want 1", len(ss))
	}
	s := ss[0]
	if got, want := s.eventList(), "request,upstream "+addrOf(u)+",response,close"; got != want {
		t.Errorf("callbacks %q, want %q", got, want)
	}
	wantPseudo := [][2]string{
		{":authority", e.Host}, {":path", "/chat/poll?x=1"}, {":method", "GET"}, {":scheme", "http"},
	}
	if !slices.Equal(s.reqIn[:4], wantPseudo) {
		t.Errorf("request pseudo-headers %q, want %q", s.reqIn[:4], wantPseudo)
	}
	if !s.reqEOS {
		t.Error("a GET without body was not end of stream")
	}
	for _, kv := range s.reqIn {
		if kv[0] != strings.ToLower(kv[0]) {
			t.Errorf("header name %q not lowercase", kv[0])
		}
		if kv[0] == "connection" || kv[0] == "x-hop" {
			t.Errorf("filter saw hop-by-hop header %q", kv[0])
		}
	}
	if s.respIn[0] != [2]string{":status", "200"} {
		t.Errorf("response head starts with %q", s.respIn[0])
	}
	if s.info.Protocol != "HTTP/1.1" || s.info.TLS || s.info.SourceAddress == "" || s.info.DestinationAddress != p.Addr() {
		t.Errorf("stream info %+v", s.info)
	}
}

func TestRepeatedSetCookieStaySeparate(t *testing.T) {
	_, u := echoUpstream(t, "a")
	p := startProxy(t, Options{Upstreams: []*url.URL{u}}, &fakeFilter{})
	resp, _ := get(t, nil, p.URL()+"/")
	want := []string{
		"a=1; Path=/; Partitioned",
		"b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Partitioned",
		"c=3; Partitioned",
	}
	if got := resp.Header["Set-Cookie"]; !slices.Equal(got, want) {
		t.Errorf("Set-Cookie lines\n got %q\nwant %q", got, want)
	}

	// The same on the wire: three separate lines, in order.
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	raw, _ := io.ReadAll(conn)
	var lines []string
	for _, l := range strings.Split(string(raw), "\r\n") {
		if strings.HasPrefix(l, "Set-Cookie: ") {
			lines = append(lines, strings.TrimPrefix(l, "Set-Cookie: "))
		}
	}
	if !slices.Equal(lines, want) {
		t.Errorf("raw Set-Cookie lines\n got %q\nwant %q", lines, want)
	}
}

func TestRoundRobinAcrossUpstreams(t *testing.T) {
	urls := echoUpstreams(t, "a", "b", "c")
	p := startProxy(t, Options{Upstreams: urls})
	var seq []string
	for i := 0; i < 9; i++ {
		_, body := get(t, nil, p.URL()+"/")
		seq = append(seq, decodeEcho(t, body).Upstream)
	}
	if got, want := strings.Join(seq, ""), "abcabcabc"; got != want {
		t.Errorf("upstream sequence %q, want %q", got, want)
	}
}

func TestRoutingHeader(t *testing.T) {
	urls := echoUpstreams(t, "a", "b", "c")
	for _, withFilter := range []bool{false, true} {
		t.Run(fmt.Sprintf("filter=%v", withFilter), func(t *testing.T) {
			o := Options{Upstreams: urls, RoutingHeader: "X-Session-Host"}
			var fakes []*fakeFilter
			if withFilter {
				fakes = append(fakes, &fakeFilter{})
			}
			p := startProxy(t, o, fakes...)
			b := addrOf(urls[1])

			// Honoured: every request goes to b, and the response does not repeat the header.
			for i := 0; i < 4; i++ {
				resp, body := get(t, nil, p.URL()+"/", "X-Session-Host", affinity.EncodeRoutingValue(b))
				if e := decodeEcho(t, body); e.Upstream != "b" {
					t.Fatalf("request %d went to %s, want b", i, e.Upstream)
				}
				if v := resp.Header.Get("X-Session-Host"); v != "" {
					t.Errorf("response repeats the routing header %q although the host did not change", v)
				}
			}

			// Unknown host, undecodable value, absent header: balanced, and the response names the host used.
			for _, v := range []string{affinity.EncodeRoutingValue("10.255.0.1:9"), "%%%not-base64", ""} {
				var hdr []string
				if v != "" {
					hdr = []string{"X-Session-Host", v}
				}
				seen := map[string]bool{}
				for i := 0; i < 3; i++ {
					resp, body := get(t, nil, p.URL()+"/", hdr...)
					e := decodeEcho(t, body)
					seen[e.Upstream] = true
					used := addrOf(urls[int(e.Upstream[0]-'a')])
					if got := resp.Header.Get("X-Session-Host"); got != affinity.EncodeRoutingValue(used) {
						t.Errorf("header %q: response routing header %q, want base64(%s)", v, got, used)
					}
				}
				if len(seen) != 3 {
					t.Errorf("header %q: requests were not balanced: %v", v, seen)
				}
			}
		})
	}
}

// TestRoutingHeaderReadAfterFilter checks the Envoy filter order: the routing header the filter sets (from its
// affinity cookie) is the one that routes, and one the client sent but the filter removed has no effect.
func TestRoutingHeaderReadAfterFilter(t *testing.T) {
	urls := echoUpstreams(t, "a", "b", "c")
	f := &fakeFilter{}
	p := startProxy(t, Options{Upstreams: urls}, f)
	// The fake keeps the header; x-drop-me is what it removes. Name the routing header so that the filter drops it.
	p.routingHeader = "x-drop-me"
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		_, body := get(t, nil, p.URL()+"/", "X-Drop-Me", affinity.EncodeRoutingValue(addrOf(urls[2])))
		seen[decodeEcho(t, body).Upstream] = true
	}
	if len(seen) != 3 {
		t.Errorf("a routing header removed by the filter still pinned the request: %v", seen)
	}
}

// deadUpstream returns the URL of a port nothing listens on.
func deadUpstream(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &url.URL{Scheme: "http", Host: addr}
}

func TestDownUpstreamIsSkippedAndRetried(t *testing.T) {
	dead := deadUpstream(t)
	_, live := echoUpstream(t, "live")
	f := &fakeFilter{}
	p := startProxy(t, Options{Upstreams: []*url.URL{dead, live}, Admin: "127.0.0.1:0", DownFor: time.Minute}, f)
	now := time.Now()
	var clockMu sync.Mutex
	p.bal.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }

	// The first request is balanced onto the dead upstream, refused, and retried on the live one, body included.
	body := strings.Repeat("x", 1000)
	req, _ := http.NewRequest("POST", p.URL()+"/cometd/handshake", strings.NewReader(body))
	resp, out := do(t, nil, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	e := decodeEcho(t, out)
	if e.Upstream != "live" || e.BodyLen != int64(len(body)) {
		t.Fatalf("retried request reached %s with %d body bytes", e.Upstream, e.BodyLen)
	}
	s := f.all()[0]
	if want := []string{dead.Host, live.Host}; !slices.Equal(s.upAddrs, want) {
		t.Errorf("upstream.address set to %q, want %q (the address actually used last)", s.upAddrs, want)
	}
	if got := resp.Header.Get("X-Filter-Upstream"); got != live.Host {
		t.Errorf("filter saw upstream %q on the response, want %q", got, live.Host)
	}
	if got := resp.Header.Get(config.DefaultRoutingHeader); got != affinity.EncodeRoutingValue(live.Host) {
		t.Errorf("routing header on response %q", got)
	}

	// Marked down: skipped, even when a routing header names it.
	for i := 0; i < 4; i++ {
		_, out := get(t, nil, p.URL()+"/", config.DefaultRoutingHeader, affinity.EncodeRoutingValue(dead.Host))
		if e := decodeEcho(t, out); e.Upstream != "live" {
			t.Fatalf("request %d went to %s", i, e.Upstream)
		}
	}
	stats := adminGet(t, p, "/stats")
	for _, want := range []string{
		fmt.Sprintf("wasmhost_upstream_up{upstream=%q} 0", dead.Host),
		fmt.Sprintf("wasmhost_upstream_up{upstream=%q} 1", live.Host),
		fmt.Sprintf("wasmhost_requests_total{upstream=%q} 1", dead.Host),
		fmt.Sprintf("wasmhost_requests_total{upstream=%q} 5", live.Host),
		"wasmhost_upstream_errors_total 1",
	} {
		if !strings.Contains(stats, want) {
			t.Errorf("/stats lacks %q:\n%s", want, stats)
		}
	}
	if h := adminGet(t, p, "/healthz"); !strings.Contains(h, "upstream "+dead.Host+" down") {
		t.Errorf("/healthz: %q", h)
	}

	// After DownFor the upstream is tried again (and, still dead, marked down again; the request still succeeds).
	clockMu.Lock()
	now = now.Add(time.Minute + time.Second)
	clockMu.Unlock()
	if !p.bal.healthy(p.bal.byAddr[dead.Host]) {
		t.Fatal("upstream still down after DownFor")
	}
	_, out = get(t, nil, p.URL()+"/", config.DefaultRoutingHeader, affinity.EncodeRoutingValue(dead.Host))
	if e := decodeEcho(t, out); e.Upstream != "live" {
		t.Fatalf("went to %s", e.Upstream)
	}
	if p.bal.healthy(p.bal.byAddr[dead.Host]) {
		t.Error("refused upstream not marked down again")
	}
}

func TestAllUpstreamsDown(t *testing.T) {
	p := startProxy(t, Options{Upstreams: []*url.URL{deadUpstream(t), deadUpstream(t)},
		Admin: "127.0.0.1:0"}, &fakeFilter{})
	for i := 0; i < 3; i++ {
		resp, body := get(t, nil, p.URL()+"/")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("request %d: status %d %q, want 503", i, resp.StatusCode, body)
		}
		// the proxy's own reply goes through the filter's response callback, like Envoy's router replies
		if resp.Header.Get("X-Filter-Upstream") == "" && i == 0 {
			t.Error("the proxy's 503 did not pass the filter's response callback")
		}
	}
	resp, err := http.Get(p.AdminURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz with every upstream down: %d", resp.StatusCode)
	}
}

func TestUnreplayableBodyIsNotRetried(t *testing.T) {
	dead := deadUpstream(t)
	_, live := echoUpstream(t, "live")
	p := startProxy(t, Options{Upstreams: []*url.URL{dead, live}})
	// An unsized (chunked) body is streamed, so a refused first attempt cannot be replayed: 502, and dead is marked.
	req, _ := http.NewRequest("POST", p.URL()+"/", io.MultiReader(strings.NewReader("abc")))
	req.ContentLength = -1
	resp, _ := do(t, nil, req)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", p.URL()+"/", io.MultiReader(strings.NewReader("abc")))
	req.ContentLength = -1
	resp, out := do(t, nil, req)
	if e := decodeEcho(t, out); resp.StatusCode != 200 || e.Upstream != "live" || e.BodyLen != 3 {
		t.Fatalf("second request: %d %+v", resp.StatusCode, e)
	}
}

func TestLocalResponse(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	f := &fakeFilter{local: func(h [][2]string) *host.LocalResponse {
		if p, _ := headerValue(h, ":path"); p == "/blocked" {
			return &host.LocalResponse{Status: 403, Headers: [][2]string{{"x-reason", "blocked"}, {"set-cookie", "x=1"},
				{"set-cookie", "y=2"}}, Body: []byte("no\n")}
		}
		return nil
	}}
	p := startProxy(t, Options{Upstreams: []*url.URL{u}, Admin: "127.0.0.1:0"}, f)
	resp, body := get(t, nil, p.URL()+"/blocked")
	if resp.StatusCode != 403 || string(body) != "no\n" || resp.Header.Get("X-Reason") != "blocked" ||
		len(resp.Header["Set-Cookie"]) != 2 {
		t.Errorf("local response: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if hits.Load() != 0 {
		t.Error("the upstream was called for a local response")
	}
	if s := adminGet(t, p, "/stats"); !strings.Contains(s, "wasmhost_local_responses_total 1") {
		t.Errorf("local response not counted:\n%s", s)
	}
	stopProxy(t, p)
	if got := f.all()[0].eventList(); got != "request,response,close" {
		t.Errorf("callbacks %q", got)
	}
}

func TestFilterUnavailable(t *testing.T) {
	_, u := echoUpstream(t, "a")
	p := startProxy(t, Options{Upstreams: []*url.URL{u}}, &fakeFilter{newErr: errNoInstance})
	resp, _ := get(t, nil, p.URL()+"/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
}

func TestTLSSelfSignedHTTP2(t *testing.T) {
	_, u := echoUpstream(t, "a")
	f := &fakeFilter{}
	p := startProxy(t, Options{Upstreams: []*url.URL{u},
		TLS: &TLSOptions{SelfSigned: true, Hosts: []string{"*.test", "10.1.2.3"}}}, f)
	if !strings.HasPrefix(p.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %q", p.URL())
	}
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
	}}
	defer c.CloseIdleConnections()
	resp, body := get(t, c, p.URL()+"/h2")
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	if len(resp.Header["Set-Cookie"]) != 3 {
		t.Errorf("Set-Cookie over HTTP/2: %q", resp.Header["Set-Cookie"])
	}
	if e := decodeEcho(t, body); e.URI != "/h2" {
		t.Errorf("upstream URI %q", e.URI)
	}
	s := f.all()[0]
	if !s.info.TLS || s.info.Protocol != "HTTP/2" {
		t.Errorf("stream info %+v", s.info)
	}
	if v, _ := headerValue(s.reqIn, ":scheme"); v != "https" {
		t.Errorf(":scheme %q", v)
	}
	cert := resp.TLS.PeerCertificates[0]
	if err := cert.VerifyHostname("chat.test"); err != nil {
		t.Errorf("extra wildcard name: %v", err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "10.1.2.3"} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}

	// HTTP/1.1 stays available over TLS for clients that do not offer h2.
	c1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c1.CloseIdleConnections()
	resp, _ = get(t, c1, p.URL()+"/")
	if resp.ProtoMajor != 1 {
		t.Errorf("protocol %s, want HTTP/1.1", resp.Proto)
	}
}

func TestTLSFromFiles(t *testing.T) {
	if _, err := New(Options{Listen: "127.0.0.1:0", Upstreams: []*url.URL{deadUpstream(t)},
		TLS: &TLSOptions{CertFile: "/nonexistent/cert.pem"}}); err == nil {
		t.Error("a certificate without key was accepted")
	}
	if _, err := New(Options{Listen: "127.0.0.1:0", Upstreams: []*url.URL{deadUpstream(t)},
		TLS: &TLSOptions{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}}); err == nil ||
		!strings.Contains(err.Error(), "serve: tls:") {
		t.Errorf("missing files: %v", err)
	}
}

// TestStreamingIsNotBuffered proves the proxy forwards each chunk as it comes: the upstream sends one chunk and then
// waits until the client has read it before it finishes. A buffering proxy would deadlock here (the test would hit
// its timeout instead of passing).
func TestStreamingIsNotBuffered(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			clientGotFirst := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "first\n")
				w.(http.Flusher).Flush()
				select {
				case <-clientGotFirst:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "second\n")
			}))
			defer up.Close()
			u, _ := url.Parse(up.URL)
			o := Options{Upstreams: []*url.URL{u}}
			c := http.DefaultClient
			if tlsOn {
				o.TLS = &TLSOptions{SelfSigned: true}
				tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
				defer tr.CloseIdleConnections()
				c = &http.Client{Transport: tr}
			}
			p := startProxy(t, o, &fakeFilter{})
			resp, err := c.Get(p.URL() + "/long-poll")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first chunk %q, %v", line, err)
			}
			close(clientGotFirst)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "second\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

func TestRequestBodyPassesThrough(t *testing.T) {
	_, u := echoUpstream(t, "a")
	f := &fakeFilter{}
	p := startProxy(t, Options{Upstreams: []*url.URL{u}}, f)
	for _, size := range []int{0, 10, maxReplayBody, maxReplayBody + 1, 3 << 20} {
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		sum := sha256.Sum256(data)
		for _, sized := range []bool{true, false} {
			var rd io.Reader = bytes.NewReader(data)
			if !sized {
				rd = io.MultiReader(rd) // hides the length: sent chunked
			}
			req, _ := http.NewRequest("PUT", p.URL()+"/upload", rd)
			resp, out := do(t, nil, req)
			e := decodeEcho(t, out)
			if resp.StatusCode != 200 || e.Method != "PUT" || e.BodyLen != int64(size) ||
				e.BodySHA != hex.EncodeToString(sum[:]) {
				t.Errorf("size %d sized %v: status %d, upstream got %d bytes", size, sized, resp.StatusCode, e.BodyLen)
			}
		}
	}
	ss := f.all()
	if !ss[0].reqEOS || ss[2].reqEOS {
		t.Errorf("end of stream on request headers: empty body %v, sized body %v", ss[0].reqEOS, ss[2].reqEOS)
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Set-Cookie: BAYEUX_BROWSER=1\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n') // echo one line, upper-cased
		brw.WriteString(strings.ToUpper(line))
		brw.Flush()
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p := startProxy(t, Options{Upstreams: []*url.URL{u}}, &fakeFilter{})
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /cometd HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	// The handshake response passed the filter like any other.
	if got := resp.Header.Get("Set-Cookie"); got != "BAYEUX_BROWSER=1; Partitioned" {
		t.Errorf("Set-Cookie on the 101: %q", got)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "HELLO\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

func adminGet(t *testing.T, p *Server, path string) string {
	t.Helper()
	resp, err := http.Get(p.AdminURL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestAdmin(t *testing.T) {
	_, a := echoUpstream(t, "a")
	_, b := echoUpstream(t, "b")
	f := &fakeFilter{
		stats:   host.Stats{Traps: 2},
		policy:  host.FailOpen,
		metrics: []host.Metric{{Name: "chips.cookies_rewritten", Kind: host.MetricCounter, Value: 7}},
	}
	cfg := `{"cookies":{"same_site":"None"},"affinity":{"enabled":true,"keys":["c2VjcmV0LWtleS0x","c2VjcmV0LWtleS0y"],"routing_header":"x-up"}}`
	p := startProxy(t, Options{Upstreams: []*url.URL{a, b}, Admin: "127.0.0.1:0",
		FilterConfig: []byte(cfg), Info: map[string]any{"wasm": "build/filter.wasm"}}, f)
	get(t, nil, p.URL()+"/")

	stats := adminGet(t, p, "/stats")
	for _, want := range []string{
		"# TYPE wasmhost_requests_total counter\n",
		fmt.Sprintf("wasmhost_requests_total{upstream=%q} 1\n", a.Host),
		fmt.Sprintf("wasmhost_requests_total{upstream=%q} 0\n", b.Host),
		"# TYPE wasmhost_active_streams gauge\nwasmhost_active_streams ",
		"wasmhost_upstream_errors_total 0\n",
		"wasmhost_local_responses_total 0\n",
		"# TYPE wasmcustom_chips_cookies_rewritten counter\nwasmcustom_chips_cookies_rewritten 7\n",
		`wasmhost_guest_failures_total{policy="open"} 2` + "\n",
	} {
		if !strings.Contains(stats, want) {
			t.Errorf("/stats lacks %q", want)
		}
	}
	if strings.Count(stats, "# TYPE wasmhost_requests_total") != 1 {
		t.Error("one metric family printed twice")
	}

	if h := adminGet(t, p, "/healthz"); !strings.HasPrefix(h, "ok\n") || !strings.Contains(h, "upstream "+a.Host+" up") {
		t.Errorf("/healthz %q", h)
	}

	raw := adminGet(t, p, "/config")
	if strings.Contains(raw, "c2VjcmV0") {
		t.Fatalf("/config leaks an affinity key:\n%s", raw)
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	if c["listen"] != p.Addr() || c["wasm"] != "build/filter.wasm" || c["routing_header"] != config.DefaultRoutingHeader {
		t.Errorf("/config %v", c)
	}
	keys := c["filter_config"].(map[string]any)["affinity"].(map[string]any)["keys"].([]any)
	if len(keys) != 2 || keys[0] != Redacted {
		t.Errorf("masked keys %v", keys)
	}
	if ss := c["filter_config"].(map[string]any)["cookies"].(map[string]any)["same_site"]; ss != "None" {
		t.Errorf("non-secret field altered: %v", ss)
	}
}

func TestPrometheusName(t *testing.T) {
	for in, want := range map[string]string{
		"wasmcustom.chips.cookies_rewritten": "wasmcustom_chips_cookies_rewritten",
		"a-b c":                              "a_b_c",
		"9lives":                             "_lives",
		"ok:name_1":                          "ok:name_1",
		"":                                   "_",
	} {
		if got := PrometheusName(in); got != want {
			t.Errorf("PrometheusName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	inUpstream := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inUpstream)
		<-release
		io.WriteString(w, "done")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	s, err := New(Options{Listen: "127.0.0.1:0", Upstreams: []*url.URL{u}, Logger: quietLogger(),
		Admin: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	(&fakeFilter{}).install(s)
	// net/http closes the listeners when Shutdown begins, then runs these hooks: the event the test waits for.
	listenerClosed := make(chan struct{})
	s.srv.RegisterOnShutdown(func() { close(listenerClosed) })
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(s.URL() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{string(b), err}
	}()
	<-inUpstream
	if st := adminGet(t, s, "/stats"); !strings.Contains(st, "wasmhost_active_streams 1\n") {
		t.Errorf("in-flight request not counted as active:\n%s", st)
	}
	cancel() // shutdown starts while the request is in flight
	<-listenerClosed
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatal("listener still accepting after shutdown began")
	}
	close(release)
	r := <-got
	if r.err != nil || r.body != "done" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	for name, o := range map[string]Options{
		"no upstream":       {Listen: "127.0.0.1:0"},
		"bad scheme":        {Listen: "127.0.0.1:0", Upstreams: []*url.URL{{Scheme: "ftp", Host: "x:1"}}},
		"duplicate":         {Listen: "127.0.0.1:0", Upstreams: []*url.URL{{Scheme: "http", Host: "a:1"}, {Scheme: "http", Host: "a:1"}}},
		"bad header":        {Listen: "127.0.0.1:0", Upstreams: []*url.URL{{Scheme: "http", Host: "a:1"}}, RoutingHeader: "a b"},
		"bad listen":        {Listen: "127.0.0.1:notaport", Upstreams: []*url.URL{{Scheme: "http", Host: "a:1"}}},
		"tls both":          {Listen: "127.0.0.1:0", Upstreams: []*url.URL{{Scheme: "http", Host: "a:1"}}, TLS: &TLSOptions{SelfSigned: true, CertFile: "c"}},
		"no host upstream":  {Listen: "127.0.0.1:0", Upstreams: []*url.URL{{Scheme: "http"}}},
		"admin bad address": {Listen: "127.0.0.1:0", Upstreams: []*url.URL{{Scheme: "http", Host: "a:1"}}, Admin: "nope:nope"},
	} {
		s, err := New(o)
		if err == nil {
			s.Shutdown(context.Background())
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "serve: ") {
			t.Errorf("%s: error %q does not name its component", name, err)
		}
	}
}

func TestUpstreamPathPrefix(t *testing.T) {
	_, u := echoUpstream(t, "a")
	pu := *u
	pu.Path = "/base/"
	p := startProxy(t, Options{Upstreams: []*url.URL{&pu}})
	_, body := get(t, nil, p.URL()+"/x%2Fy/z?q=1")
	if e := decodeEcho(t, body); e.URI != "/base/x%2Fy/z?q=1" {
		t.Errorf("upstream URI %q", e.URI)
	}
}

func TestFilterResponseVerdicts(t *testing.T) {
	_, u := echoUpstream(t, "a")
	// The response callback replaces the upstream's response (as the failure policy's 503 does).
	f := &fakeFilter{respVerdict: func(h [][2]string) host.Verdict {
		return host.Verdict{Local: &host.LocalResponse{Status: 503, Headers: [][2]string{{"x-why", "policy"}}, Body: []byte("x")},
			Err: errNoInstance}
	}}
	p := startProxy(t, Options{Upstreams: []*url.URL{u}, Admin: "127.0.0.1:0"}, f)
	resp, body := get(t, nil, p.URL()+"/")
	if resp.StatusCode != 503 || string(body) != "x" || resp.Header.Get("X-Why") != "policy" ||
		len(resp.Header["Set-Cookie"]) != 0 {
		t.Errorf("replaced response: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if st := adminGet(t, p, "/stats"); !strings.Contains(st, "wasmhost_filter_errors_total 1\n") {
		t.Errorf("filter error not counted:\n%s", st)
	}

	// A reset on the request path aborts the connection without a response.
	f2 := &fakeFilter{reqReset: true}
	p2 := startProxy(t, Options{Upstreams: []*url.URL{u}}, f2)
	if resp, err := http.Get(p2.URL() + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("reset stream answered %d", resp.StatusCode)
	}
	stopProxy(t, p2)
	if got := f2.all()[0].eventList(); got != "request,close" {
		t.Errorf("reset stream callbacks %q", got)
	}
}

func TestPrometheusHistogram(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writePrometheus(w, []sample{
		{Metric: host.Metric{Name: "wasmcustom.h", Kind: host.MetricHistogram, Count: 3, Sum: 12}, Help: "a\nb"},
		gauge("l", "", -1, [2]string{"k", "a\"b\\c\nd"}),
	})
	w.Flush()
	want := "# HELP wasmcustom_h a\\nb\n# TYPE wasmcustom_h summary\nwasmcustom_h_sum 12\nwasmcustom_h_count 3\n" +
		"# TYPE l gauge\nl{k=\"a\\\"b\\\\c\\nd\"} -1\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// The profiler is on the admin listener only when asked for, and never without one.
func TestPprofOnAdmin(t *testing.T) {
	_, u := echoUpstream(t, "a")
	for _, on := range []bool{false, true} {
		p := startProxy(t, Options{Upstreams: []*url.URL{u}, Admin: "127.0.0.1:0", Pprof: on})
		resp, err := http.Get(p.AdminURL() + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; resp.StatusCode != want {
			t.Errorf("pprof %v: /debug/pprof/cmdline answered %d, want %d", on, resp.StatusCode, want)
		}
	}
	if _, err := New(Options{Listen: "127.0.0.1:0", Upstreams: []*url.URL{u}, Pprof: true}); err == nil ||
		err.Error() != "serve: pprof needs the admin listener" {
		t.Errorf("pprof without admin: %v", err)
	}
}
