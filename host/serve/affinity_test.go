package serve

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// TestAffinityThroughFilter runs the real filter (build/filter.wasm) with testdata/config/affinity.json in front of
// three upstreams, with a cookie-jar client: the proxy's stateful-session handling and the filter's sealed cookie
// together must give sticky sessions that survive an upstream going down.
func TestAffinityThroughFilter(t *testing.T) {
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(testwasm.RepoRoot(), "testdata", "config", "affinity.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The plugin's clock (WASI walltime) is the host's: tests move it to expire tokens.
	var clockMu sync.Mutex
	now := time.Now()
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	newHost := func(cfg []byte) *host.Host {
		h, err := host.New(context.Background(), host.Options{Module: module, PluginConfig: cfg, PoolSize: 2,
			CacheDir: testwasm.CacheDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close(context.Background()) })
		return h
	}
	h := newHost(cfg)

	names := map[string]string{} // upstream address -> name
	var urls []*url.URL
	var closers []func()
	for _, n := range []string{"a", "b", "c"} {
		srv, u := echoUpstream(t, n)
		urls = append(urls, u)
		names[u.Host] = n
		closers = append(closers, srv.Close)
	}
	p := startProxy(t, Options{Upstreams: urls, Filter: h, TLS: &TLSOptions{SelfSigned: true},
		Admin: "127.0.0.1:0"})

	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Jar: jar}
	base, _ := url.Parse(p.URL())

	affinityCookie := func() string {
		for _, c := range jar.Cookies(base) {
			if strings.HasSuffix(c.Name, "chips_affinity") { // the filter may add the __Host- prefix
				return c.Value
			}
		}
		return ""
	}
	call := func(c *http.Client, hdr ...string) (echoed, *http.Response) {
		t.Helper()
		resp, body := get(t, c, p.URL()+"/cometd/connect", hdr...)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if v := resp.Header.Get(config.DefaultRoutingHeader); v != "" {
			t.Errorf("the internal routing header reached the client: %q", v)
		}
		e := decodeEcho(t, body)
		if strings.Contains(strings.Join(e.Header.Values("Cookie"), ";"), "chips_affinity") {
			t.Errorf("the upstream saw the affinity cookie (indirect is on): %q", e.Header.Values("Cookie"))
		}
		return e, resp
	}

	// First response pins.
	first, resp := call(client)
	token := affinityCookie()
	if token == "" {
		t.Fatalf("no affinity cookie issued; Set-Cookie %q", resp.Header["Set-Cookie"])
	}
	pinned := first.Upstream

	// The next requests stay, even when the client names another upstream itself.
	other := ""
	for addr, n := range names {
		if n != pinned {
			other = addr
		}
	}
	for i := 0; i < 6; i++ {
		var hdr []string
		if i%2 == 1 {
			hdr = []string{config.DefaultRoutingHeader, affinity.EncodeRoutingValue(other)}
		}
		if e, _ := call(client, hdr...); e.Upstream != pinned {
			t.Fatalf("request %d went to %s, pinned to %s", i, e.Upstream, pinned)
		}
	}

	// Without the cookie, a client-supplied routing header has no effect: requests are balanced.
	plain := &http.Client{Transport: tr}
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		e, _ := call(plain, config.DefaultRoutingHeader, affinity.EncodeRoutingValue(other))
		seen[e.Upstream] = true
	}
	if len(seen) != 3 {
		t.Errorf("a client-supplied routing header pinned requests: %v", seen)
	}

	// A tampered token is rejected and replaced.
	// One base64 character in the middle changes: still well-formed, but the ciphertext no longer authenticates.
	tampered := []byte(token)
	if mid := len(tampered) / 2; tampered[mid] == 'A' {
		tampered[mid] = 'B'
	} else {
		tampered[mid] = 'A'
	}
	name := ""
	for _, c := range jar.Cookies(base) {
		if strings.HasSuffix(c.Name, "chips_affinity") {
			name = c.Name
		}
	}
	_, resp = call(plain, "Cookie", name+"="+string(tampered))
	if !strings.Contains(strings.Join(resp.Header["Set-Cookie"], "\n"), "chips_affinity=") {
		t.Errorf("a tampered token was not replaced: %q", resp.Header["Set-Cookie"])
	}

	// The pinned upstream goes down: the next request fails over and the client is re-pinned with a new cookie.
	closers[int(pinned[0]-'a')]()
	moved, _ := call(client)
	if moved.Upstream == pinned {
		t.Fatalf("request reached the closed upstream %s", pinned)
	}
	if affinityCookie() == token {
		t.Fatal("no new cookie after failover")
	}
	for i := 0; i < 4; i++ {
		if e, _ := call(client); e.Upstream != moved.Upstream {
			t.Fatalf("after failover request %d went to %s, re-pinned to %s", i, e.Upstream, moved.Upstream)
		}
	}

	// Idle past max_idle (30m by default): the token is rejected as expired and replaced.
	token = affinityCookie()
	clockMu.Lock()
	now = now.Add(31 * time.Minute)
	clockMu.Unlock()
	if _, resp := call(client); !strings.Contains(strings.Join(resp.Header["Set-Cookie"], "\n"), "chips_affinity=") {
		t.Errorf("an expired token was not replaced: %q", resp.Header["Set-Cookie"])
	}
	if affinityCookie() == token {
		t.Error("the jar still holds the expired token")
	}
	repinned, _ := call(client)

	stats := adminGet(t, p, "/stats")
	for _, want := range []string{"wasmcustom_chips_affinity_issued ", "wasmcustom_chips_affinity_honoured ",
		"wasmcustom_chips_affinity_repinned 1\n", "wasmcustom_chips_affinity_rejected_tampered 1\n",
		"wasmcustom_chips_affinity_rejected_expired_idle 1\n"} {
		if !strings.Contains(stats, want) {
			t.Errorf("/stats lacks %q", want)
		}
	}

	// Key rotation: a proxy whose filter seals with a new key and still opens with the old one honours the
	// cookies issued so far (the jar sends them: cookies ignore ports).
	var old struct {
		Affinity struct{ Keys []string }
	}
	if err := json.Unmarshal(cfg, &old); err != nil || len(old.Affinity.Keys) == 0 {
		t.Fatalf("affinity.json keys: %v", err)
	}
	newKey := make([]byte, 32)
	rand.Read(newKey)
	rotated, _ := json.Marshal(map[string]any{"affinity": map[string]any{"enabled": true,
		"keys": []string{base64.StdEncoding.EncodeToString(newKey), old.Affinity.Keys[0]}}})
	p2 := startProxy(t, Options{Upstreams: urls, Filter: newHost(rotated),
		TLS: &TLSOptions{SelfSigned: true}})
	for i := 0; i < 3; i++ {
		resp, body := get(t, client, p2.URL()+"/cometd/connect")
		if e := decodeEcho(t, body); resp.StatusCode != 200 || e.Upstream != repinned.Upstream {
			t.Fatalf("after key rotation request %d went to %s (status %d), pinned to %s", i, e.Upstream,
				resp.StatusCode, repinned.Upstream)
		}
	}
}
