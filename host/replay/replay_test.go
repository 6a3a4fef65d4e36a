package replay

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/replay")

const goldenDir = "../../testdata/replay"

// fakeFilter appends "; Partitioned" to every Set-Cookie that lacks it and stamps the response with the request's
// authority and upstream; a request for /local is answered locally, as is a response carrying x-fail.
type fakeFilter struct {
	mu      sync.Mutex
	streams []*fakeStream
}

type fakeStream struct {
	req      [][2]string
	resp     [][2]string
	upstream string
	respEOS  bool
	closed   bool
}

func (f *fakeFilter) NewStream(ctx context.Context, info host.StreamInfo) (stream, error) {
	s := &fakeStream{}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	return s, nil
}

func (s *fakeStream) OnRequestHeaders(h [][2]string, eos bool) host.Verdict {
	s.req = h
	for _, kv := range h {
		if kv == [2]string{":path", "/local"} {
			return host.Verdict{Local: &host.LocalResponse{Status: 403, Headers: [][2]string{{"x-reason", "local"}},
				Body: []byte("blocked\n")}}
		}
	}
	return host.Verdict{}
}

func (s *fakeStream) RequestHeaders() [][2]string  { return s.req }
func (s *fakeStream) SetUpstreamAddress(a string)  { s.upstream = a }
func (s *fakeStream) ResponseHeaders() [][2]string { return s.resp }
func (s *fakeStream) Close()                       { s.closed = true }

func (s *fakeStream) OnResponseHeaders(h [][2]string, eos bool) host.Verdict {
	s.respEOS = eos
	authority := ""
	for _, kv := range s.req {
		if kv[0] == ":authority" {
			authority = kv[1]
		}
	}
	var out [][2]string
	for _, kv := range h {
		if kv[0] == "x-fail" {
			return host.Verdict{Local: &host.LocalResponse{Status: 503}}
		}
		if kv[0] == "set-cookie" && !strings.Contains(kv[1], "Partitioned") {
			kv[1] += "; Partitioned"
		}
		out = append(out, kv)
	}
	out = append(out, [2]string{"x-replayed-for", authority})
	if s.upstream != "" {
		out = append(out, [2]string{"x-upstream", s.upstream})
	}
	s.resp = out
	return host.Verdict{}
}

// goldenCases lists the cases under testdata/replay: each NAME.in, with an optional NAME.request.
func goldenCases(t *testing.T) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join(goldenDir, "*.in"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs in %s: %v", goldenDir, err)
	}
	var names []string
	for _, in := range ins {
		names = append(names, strings.TrimSuffix(filepath.Base(in), ".in"))
	}
	return names
}

// caseRequest reads NAME.request when present.
func caseRequest(t *testing.T, name string) RequestHead {
	t.Helper()
	f, err := os.Open(filepath.Join(goldenDir, name+".request"))
	if os.IsNotExist(err) {
		return RequestHead{}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req, err := ParseRequest(f)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestGoldenFakeFilter(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			in, err := os.Open(filepath.Join(goldenDir, name+".in"))
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			f := &fakeFilter{}
			var out bytes.Buffer
			o := Options{open: f.NewStream, Request: caseRequest(t, name), UpstreamAddress: "10.0.0.7:8080"}
			if err := Replay(context.Background(), o, in, &out); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(goldenDir, name+".fake.golden"), out.Bytes())
			for i, s := range f.streams {
				if !s.closed {
					t.Errorf("stream %d not closed", i)
				}
			}
		})
	}
}

func TestReplayStreamsAndOrder(t *testing.T) {
	in := "HTTP/1.1 200 OK\nSet-Cookie: z=1\nX-A: 1\nset-cookie: y=2\nX-A: 2\n\nHTTP/1.1 204 No Content\n\n"
	f := &fakeFilter{}
	var out bytes.Buffer
	if err := Replay(context.Background(), Options{open: f.NewStream}, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if len(f.streams) != 2 {
		t.Fatalf("%d streams, want one per head", len(f.streams))
	}
	wantReq := [][2]string{{":authority", "localhost"}, {":path", "/"}, {":method", "GET"}, {":scheme", "https"},
		{"x-forwarded-proto", "https"}}
	if !slices.Equal(f.streams[0].req, wantReq) {
		t.Errorf("default request %q, want %q", f.streams[0].req, wantReq)
	}
	wantResp := "HTTP/1.1 200 OK\r\nset-cookie: z=1; Partitioned\r\nx-a: 1\r\nset-cookie: y=2; Partitioned\r\nx-a: 2\r\n" +
		"x-replayed-for: localhost\r\n\r\nHTTP/1.1 204 No Content\r\nx-replayed-for: localhost\r\n\r\n"
	if out.String() != wantResp {
		t.Errorf("output\n%q\nwant\n%q", out.String(), wantResp)
	}
	if f.streams[0].respEOS || !f.streams[1].respEOS {
		t.Error("end of stream: want false for 200 with body, true for 204")
	}
}

func TestLocalResponseOnResponse(t *testing.T) {
	var out bytes.Buffer
	in := "HTTP/1.1 200 OK\nX-Fail: 1\nSet-Cookie: a=1\n"
	if err := Replay(context.Background(), Options{open: (&fakeFilter{}).NewStream}, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if want := "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestStatusReason(t *testing.T) {
	orig := ResponseHead{Status: 200, Reason: "Fine By Me"}
	if h := headFromList([][2]string{{":status", "200"}}, orig); h.Reason != "Fine By Me" {
		t.Errorf("unchanged status lost its reason: %q", h.Reason)
	}
	if h := headFromList([][2]string{{":status", "503"}}, orig); h.Status != 503 || h.Reason != "Service Unavailable" {
		t.Errorf("changed status: %d %q", h.Status, h.Reason)
	}
	if h := headFromList(nil, ResponseHead{Status: 404}); h.Reason != "Not Found" {
		t.Errorf("missing reason not filled: %q", h.Reason)
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "replay: input: no response head"},
		{"\n\n\n", "replay: input: no response head"},
		{"HTTP/1.1 200 OK\nX-A: 1\n folded\n", "replay: input: head 1, line 3: obsolete line folding (obs-fold)"},
		{"HTTP/1.1 200 OK\n\nHTTP/1.1 200 OK\nA: 1\n\tfold\n", "head 2, line 5: obsolete line folding"},
		{"HTTP/1.1 200 OK\nno colon here\n", "head 1, line 2: header line \"no colon here\" has no colon"},
		{"HTTP/1.1 200 OK\nBad Name: x\n", "head 1, line 2: header name \"Bad Name\": whitespace before the colon"},
		{"HTTP/1.1 200 OK\n: x\n", "head 1, line 2: empty header name"},
		{"HTTP/1.1 200 OK\nA\x00B: x\n", "head 1, line 2: stray"},
		{"HTTP/1.1 200 OK\nA: x\ry\n", "line 2: stray '\\r'"},
		{"HTTP/1.1 OK\n", "head 1, line 1: status line \"HTTP/1.1 OK\": status code \"OK\" is not three digits"},
		{"HTTP/1.1 2000 OK\n", "not three digits"},
		{"HTTP/1.1 099 OK\n", "not three digits"},
		{"SPDY/3 200 OK\n", "unknown protocol \"SPDY/3\""},
		{"HTTP/1.1\n", "want \"HTTP/1.1 <code> <reason>\""},
		{"HTTP/1.1 200 OK\n\nGET / HTTP/1.1\n", "head 2, line 3: status line \"GET / HTTP/1.1\""},
		{"HTTP/1.1 200 OK\nA: " + strings.Repeat("x", maxLine) + "\n", "head 1, line 2: longer than"},
	} {
		var out bytes.Buffer
		err := Replay(context.Background(), Options{open: (&fakeFilter{}).NewStream}, strings.NewReader(tc.in), &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("input %.40q: error %v, want it to contain %q", tc.in, err, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("input %.40q: bad input produced output %q", tc.in, out.String())
		}
	}
}

func TestParseRequest(t *testing.T) {
	req, err := ParseRequest(strings.NewReader("PUT https://chat.test:8443/x?y=1 HTTP/1.1\r\nHost: other\r\nX-A: b\r\n\r\nbody"))
	if err != nil {
		t.Fatal(err)
	}
	h, scheme, err := requestHeaderList(req)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{":authority", "chat.test:8443"}, {":path", "/x?y=1"}, {":method", "PUT"}, {":scheme", "https"},
		{"x-a", "b"}, {"x-forwarded-proto", "https"}}
	if scheme != "https" || !slices.Equal(h, want) {
		t.Errorf("headers %q, want %q", h, want)
	}

	req, err = ParseRequest(strings.NewReader("GET http://plain.test/ HTTP/1.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h, scheme, _ = requestHeaderList(req); scheme != "http" || h[0][1] != "plain.test" {
		t.Errorf("absolute http target: %q", h)
	}

	for _, tc := range []struct{ in, want string }{
		{"", "replay: request: empty"},
		{"GET /\n", "line 1: request line \"GET /\""},
		{"GET / HTTP/2\n", "protocol \"HTTP/2\""},
		{"G(T / HTTP/1.1\n", "method \"G(T\" is not a token"},
		{"GET ftp://x/ HTTP/1.1\n", "request target \"ftp://x/\""},
		{"GET / HTTP/1.1\nHost: a\nHost: b\n", "more than one Host header"},
		{"GET / HTTP/1.1\nHost: a\n  folded\n", "replay: request: line 3: obsolete line folding"},
	} {
		_, err := ParseRequest(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("request %q: error %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestWriteResponseRefusesSplitting(t *testing.T) {
	err := WriteResponse(&bytes.Buffer{}, ResponseHead{Status: 200, Reason: "OK",
		Headers: [][2]string{{"set-cookie", "a=1\r\nx-injected: 1"}}})
	if err == nil {
		t.Error("a value with CRLF was written")
	}
}

func FuzzParseResponses(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\n\r\n")
	f.Add("HTTP/1.0 302 Found\nLocation: /\n\n\nHTTP/1.1 204 \n")
	f.Add("HTTP/1.1 200 OK\n X: folded\n")
	f.Fuzz(func(t *testing.T, in string) {
		heads, err := ParseResponses(strings.NewReader(in))
		if err != nil {
			return
		}
		// What parses writes back out and parses again to the same heads (names keep their case here).
		var out bytes.Buffer
		for _, h := range heads {
			if err := WriteResponse(&out, h); err != nil {
				t.Fatalf("parsed head does not write: %v", err)
			}
		}
		again, err := ParseResponses(&out)
		if err != nil {
			t.Fatalf("written heads do not parse: %v\n%q", err, out.String())
		}
		if len(again) != len(heads) {
			t.Fatalf("%d heads became %d", len(heads), len(again))
		}
		for i := range heads {
			if heads[i].Status != again[i].Status || !slices.Equal(heads[i].Headers, again[i].Headers) {
				t.Fatalf("head %d changed: %+v -> %+v", i, heads[i], again[i])
			}
		}
	})
}
