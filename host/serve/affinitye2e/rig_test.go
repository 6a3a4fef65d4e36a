package affinitye2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/seal"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/serve"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

const (
	cookieName = config.DefaultAffinityCookieName
	routing    = config.DefaultRoutingHeader
)

// cacheDir keeps the filter's compiled code across the hosts of this package's tests.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "affinitye2e-cache-")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// upstream is one backend. It answers with its name and records what it saw, and flags any request that carried
// the affinity cookie: with indirect on, no upstream may ever see it.
type upstream struct {
	name string
	srv  *httptest.Server
	addr string // "127.0.0.1:port", as upstream.address and the routing header name it

	mu     sync.Mutex
	seen   []seenRequest
	leaked []string
}

type seenRequest struct {
	cookies []string // every Cookie header, in order
	route   string   // the routing header as it reached the upstream
}

func newUpstream(t *testing.T, name string) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookies := r.Header.Values("Cookie")
		u.mu.Lock()
		u.seen = append(u.seen, seenRequest{cookies: cookies, route: r.Header.Get(routing)})
		for _, c := range cookies {
			if strings.Contains(c, cookieName) {
				u.leaked = append(u.leaked, c)
			}
		}
		u.mu.Unlock()
		q := r.URL.Query()
		if q.Has("setcookie") {
			w.Header().Add("Set-Cookie", cookieName+"=from-upstream; Path=/; Secure")
			w.Header().Add("Set-Cookie", "other=1; Path=/")
		}
		if q.Has("cache") {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		w.Header().Set("X-Served-By", name)
		io.WriteString(w, name)
	}))
	t.Cleanup(func() {
		u.srv.Close()
		u.mu.Lock()
		defer u.mu.Unlock()
		if len(u.leaked) > 0 {
			t.Errorf("upstream %s saw the affinity cookie: %q", name, u.leaked)
		}
	})
	u.addr = strings.TrimPrefix(u.srv.URL, "http://")
	return u
}

func (u *upstream) last() seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return seenRequest{}
	}
	return u.seen[len(u.seen)-1]
}

func threeUpstreams(t *testing.T) []*upstream {
	return []*upstream{newUpstream(t, "A"), newUpstream(t, "B"), newUpstream(t, "C")}
}

// clock is the host's wall clock, movable forward by tests.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// proxy is the filter in a host behind wasmhost's reverse proxy, over TLS with a self-signed certificate.
type proxy struct {
	host *host.Host
	srv  *serve.Server
	url  *url.URL
	ups  map[string]*upstream // by address
	log  *lockedBuffer
}

func newProxy(t *testing.T, ups []*upstream, config string, clk *clock) *proxy {
	t.Helper()
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ups: map[string]*upstream{}, log: &lockedBuffer{}}
	logger := slog.New(slog.NewTextHandler(p.log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := host.Options{Module: module, PluginConfig: []byte(config), CacheDir: cacheDir, PoolSize: 2, Logger: logger}
	if clk != nil {
		opts.Now = clk.now
	}
	p.host, err = host.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("host: %v", err)
	}
	var urls []*url.URL
	for _, u := range ups {
		pu, _ := url.Parse(u.srv.URL)
		urls = append(urls, pu)
		p.ups[u.addr] = u
	}
	p.srv, err = serve.New(serve.Options{
		Listen:    "127.0.0.1:0",
		Upstreams: urls,
		Filter:    p.host,
		TLS:       &serve.TLSOptions{SelfSigned: true},
		Logger:    logger,
	})
	if err != nil {
		p.host.Close(context.Background())
		t.Fatalf("serve: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		p.host.Close(context.Background())
		if t.Failed() && p.log.Len() > 0 {
			t.Logf("proxy log:\n%s", p.log.String())
		}
	})
	p.url, _ = url.Parse(p.srv.URL())
	return p
}

// counter returns the plugin counter name ("chips.affinity_issued"), 0 when it was never defined.
func (p *proxy) counter(name string) int64 {
	for _, m := range p.host.Metrics() {
		if m.Name == name {
			return m.Value
		}
	}
	return 0
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// browser is a client with a cookie jar, as a browser would keep the affinity cookie: the jar sends Secure cookies
// over https only, and cookies are per host, not per port, so one browser shares its cookies among every proxy of a
// test on 127.0.0.1, the way a rolling deployment's replicas share one site.
type browser struct {
	t      *testing.T
	jar    *cookiejar.Jar
	client *http.Client
}

func newBrowser(t *testing.T, http1 bool) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: !http1}
	if http1 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: t, jar: jar, client: &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}}
}

// result is what the client got.
type result struct {
	servedBy   string
	setCookies []string
	header     http.Header
	status     int
}

// affinity returns the value of the affinity cookie the response set, "" when it set none.
func (r result) affinity() string {
	for _, sc := range r.setCookies {
		if v, ok := strings.CutPrefix(sc, cookieName+"="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v
		}
	}
	return ""
}

// get requests path through p with extra request headers, and checks what must hold for every response: the
// routing header never reaches the client.
func (b *browser) get(p *proxy, path string, header ...string) result {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.url.String()+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v := resp.Header.Values(routing); v != nil {
		b.t.Errorf("GET %s: the response carries the routing header %q", path, v)
	}
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, body)
	}
	return result{servedBy: resp.Header.Get("X-Served-By"), setCookies: resp.Header.Values("Set-Cookie"),
		header: resp.Header, status: resp.StatusCode}
}

// token returns the affinity cookie the jar holds for p, "" when none.
func (b *browser) token(p *proxy) string {
	for _, c := range b.jar.Cookies(p.url) {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

// setToken puts an affinity cookie with value into the jar, as a client could.
func (b *browser) setToken(p *proxy, value string) {
	b.jar.SetCookies(p.url, []*http.Cookie{{Name: cookieName, Value: value, Path: "/", Secure: true}})
}

func newKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// affinityConfig is a filter configuration with affinity on, sealing with keys[0].
func affinityConfig(keys []string, extra string) string {
	return `{"affinity":{"enabled":true,"keys":["` + strings.Join(keys, `","`) + `"]` + extra + `}}`
}

// opener returns a sealer holding keys, to look inside tokens the way the filter does.
func opener(t *testing.T, keys ...string) *seal.Sealer {
	t.Helper()
	raw, err := seal.ParseKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
