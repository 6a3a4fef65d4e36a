package affinitye2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
)

// follow is how many requests after the first must stay on the pinned upstream. With three upstreams taken
// round-robin, a client without affinity would leave any one of them within two requests.
const follow = 12

// pin sends the browser's first request and returns the upstream that served it, checking the cookie it got.
func pin(t *testing.T, b *browser, p *proxy, path string) *upstream {
	t.Helper()
	first := b.get(p, path)
	if first.affinity() == "" {
		t.Fatalf("first response set no affinity cookie: %q", first.setCookies)
	}
	if b.token(p) != first.affinity() {
		t.Fatalf("the jar did not keep the affinity cookie %q (jar: %v)", first.setCookies, b.jar.Cookies(p.url))
	}
	for _, sc := range first.setCookies {
		if strings.HasPrefix(sc, cookieName+"=") {
			for _, attr := range []string{"; Path=/", "; Secure", "; HttpOnly", "; SameSite=None", "; Partitioned"} {
				if !strings.Contains(sc, attr) {
					t.Errorf("affinity cookie %q lacks %q", sc, attr)
				}
			}
		}
	}
	up := upstreamNamed(t, p, first.servedBy)
	if got := up.last().route; got != "" {
		t.Errorf("first request reached %s with routing header %q, want none", up.name, got)
	}
	return up
}

func upstreamNamed(t *testing.T, p *proxy, name string) *upstream {
	t.Helper()
	for _, u := range p.ups {
		if u.name == name {
			return u
		}
	}
	t.Fatalf("response served by unknown upstream %q", name)
	return nil
}

// stays sends n requests and checks each was served by up without a new cookie.
func stays(t *testing.T, b *browser, p *proxy, up *upstream, n int) {
	t.Helper()
	for i := range n {
		r := b.get(p, "/chat")
		if r.servedBy != up.name {
			t.Fatalf("request %d after pinning to %s went to %s", i+1, up.name, r.servedBy)
		}
		if v := r.affinity(); v != "" {
			t.Fatalf("request %d: cookie re-issued within the refresh interval", i+1)
		}
	}
}

func TestFirstResponsePinsAndTheNextStay(t *testing.T) {
	ups := threeUpstreams(t)
	key := newKey(t)
	p := newProxy(t, ups, affinityConfig([]string{key}, ""), nil)

	// Without the cookie, the proxy balances: this is what affinity has to beat.
	anon := newBrowser(t, false)
	anon.client.Jar = nil // no jar: every request is a new client
	spread := map[string]bool{}
	for range 3 {
		spread[anon.get(p, "/chat").servedBy] = true
	}
	if len(spread) < 2 {
		t.Fatalf("three cookieless requests all went to %v; the test cannot tell affinity from chance", spread)
	}

	b := newBrowser(t, false)
	up := pin(t, b, p, "/chat")
	tok, err := opener(t, key).Open(b.token(p), cookieName)
	if err != nil || tok.Upstream != up.addr {
		t.Fatalf("token %+v, %v; want one for %s (%s)", tok, err, up.name, up.addr)
	}
	stays(t, b, p, up, follow)
	if got, want := up.last().route, affinity.EncodeRoutingValue(up.addr); got != want {
		t.Errorf("routing header at the upstream = %q, want %q", got, want)
	}
	if n := p.counter("chips.affinity_honoured"); n != follow {
		t.Errorf("honoured = %d, want %d", n, follow)
	}
	if n := p.counter("chips.affinity_issued"); n != 4 {
		t.Errorf("issued = %d, want 4 (three cookieless requests and the browser's first)", n)
	}
}

func TestTamperedTokenIsRejectedAndReplaced(t *testing.T) {
	ups := threeUpstreams(t)
	key := newKey(t)
	p := newProxy(t, ups, affinityConfig([]string{key}, ""), nil)
	b := newBrowser(t, false)
	pin(t, b, p, "/chat")

	// Change one character inside the ciphertext (not the last: the encoding stays canonical, so this is tampering,
	// not a malformed value).
	v := b.token(p)
	i := len(v) / 2
	c := byte('A')
	if v[i] == 'A' {
		c = 'B'
	}
	forged := v[:i] + string(c) + v[i+1:]
	b.setToken(p, forged)

	r := b.get(p, "/chat")
	if n := p.counter("chips.affinity_rejected_tampered"); n != 1 {
		t.Errorf("rejected_tampered = %d, want 1", n)
	}
	fresh := r.affinity()
	if fresh == "" || fresh == forged || b.token(p) != fresh {
		t.Fatalf("tampered token not replaced: set %q, jar %q", r.setCookies, b.token(p))
	}
	tok, err := opener(t, key).Open(fresh, cookieName)
	if err != nil || tok.Upstream != upstreamNamed(t, p, r.servedBy).addr {
		t.Fatalf("replacement %+v, %v, served by %s", tok, err, r.servedBy)
	}
	stays(t, b, p, upstreamNamed(t, p, r.servedBy), 3)
}

func TestExpiredTokensAreReplaced(t *testing.T) {
	ups := threeUpstreams(t)
	clk := &clock{}
	p := newProxy(t, ups, affinityConfig([]string{newKey(t)}, `,"max_idle":"30m","max_life":"2h"`), clk)
	b := newBrowser(t, false)
	pin(t, b, p, "/chat")

	t.Run("idle", func(t *testing.T) {
		clk.advance(31 * time.Minute)
		old := b.token(p)
		r := b.get(p, "/chat")
		if n := p.counter("chips.affinity_rejected_expired_idle"); n != 1 {
			t.Errorf("rejected_expired_idle = %d, want 1", n)
		}
		if r.affinity() == "" || r.affinity() == old {
			t.Fatalf("idle token not replaced: %q", r.setCookies)
		}
	})

	t.Run("life", func(t *testing.T) {
		// Active every 20 minutes, so never idle: each request refreshes the cookie, until the pin is over 2h old.
		// (Token times are whole seconds, so the pin is up to a second older than the clock says.)
		up := upstreamNamed(t, p, b.get(p, "/chat").servedBy)
		for step := 1; step <= 5; step++ {
			clk.advance(20 * time.Minute)
			r := b.get(p, "/chat")
			if r.servedBy != up.name || r.affinity() == "" {
				t.Fatalf("step %d (%d min): served by %s, set %q; want %s and a refreshed cookie",
					step, step*20, r.servedBy, r.setCookies, up.name)
			}
		}
		if n := p.counter("chips.affinity_refreshed"); n != 5 {
			t.Errorf("refreshed = %d, want 5", n)
		}
		clk.advance(25 * time.Minute)
		r := b.get(p, "/chat")
		if n := p.counter("chips.affinity_rejected_expired_life"); n != 1 {
			t.Errorf("rejected_expired_life = %d, want 1", n)
		}
		if r.affinity() == "" {
			t.Fatalf("token older than max_life not replaced: %q", r.setCookies)
		}
	})
}

func TestKeyRotationKeepsOldTokensValid(t *testing.T) {
	ups := threeUpstreams(t)
	oldKey, newKeyB64 := newKey(t), newKey(t)
	// One clock for all three, as replicas agree on the time: a token last seen more than seal.ClockSkew ahead
	// of a proxy's clock is refused by it.
	clk := &clock{}
	before := newProxy(t, ups, affinityConfig([]string{oldKey}, ""), clk)
	during := newProxy(t, ups, affinityConfig([]string{newKeyB64, oldKey}, ""), clk)
	after := newProxy(t, ups, affinityConfig([]string{newKeyB64}, ""), clk)

	b := newBrowser(t, false)
	up := pin(t, b, before, "/chat")
	oldToken := b.token(before)

	// The rotated proxy honours the token sealed with the old key: same upstream, nothing rejected, no new cookie.
	stays(t, b, during, up, 3)
	if n := during.counter("chips.affinity_honoured"); n != 3 {
		t.Errorf("rotated proxy honoured %d of 3", n)
	}
	if n := during.counter("chips.affinity_rejected_tampered"); n != 0 {
		t.Errorf("rotated proxy rejected %d old tokens", n)
	}

	// Its refresh re-seals with the new key, keeping the pin.
	clk.advance(2 * time.Minute)
	r := b.get(during, "/chat")
	if r.servedBy != up.name || r.affinity() == "" {
		t.Fatalf("refresh: served by %s, set %q", r.servedBy, r.setCookies)
	}
	tok, err := opener(t, newKeyB64).Open(r.affinity(), cookieName)
	if err != nil || tok.Upstream != up.addr {
		t.Fatalf("refreshed token does not open with the new key alone: %+v, %v", tok, err)
	}
	stays(t, b, after, up, 2)

	// Once the old key is dropped, a token sealed with it is no longer accepted.
	b.setToken(after, oldToken)
	r = b.get(after, "/chat")
	if n := after.counter("chips.affinity_rejected_tampered"); n != 1 {
		t.Errorf("proxy without the old key: rejected_tampered = %d, want 1", n)
	}
	if r.affinity() == "" {
		t.Errorf("token of a dropped key not replaced")
	}
}

func TestPinnedUpstreamDownRepins(t *testing.T) {
	ups := threeUpstreams(t)
	key := newKey(t)
	p := newProxy(t, ups, affinityConfig([]string{key}, ""), nil)
	b := newBrowser(t, false)
	up := pin(t, b, p, "/chat")
	stays(t, b, p, up, 2)

	up.srv.Close()
	r := b.get(p, "/chat")
	if r.servedBy == up.name {
		t.Fatalf("served by %s after it closed", up.name)
	}
	moved := upstreamNamed(t, p, r.servedBy)
	tok, err := opener(t, key).Open(r.affinity(), cookieName)
	if err != nil || tok.Upstream != moved.addr {
		t.Fatalf("after failover: token %+v, %v (set %q); want one for %s", tok, err, r.setCookies, moved.name)
	}
	if n := p.counter("chips.affinity_repinned"); n != 1 {
		t.Errorf("repinned = %d, want 1", n)
	}
	stays(t, b, p, moved, follow)
}

func TestClientRoutingHeaderHasNoEffect(t *testing.T) {
	ups := threeUpstreams(t)
	p := newProxy(t, ups, affinityConfig([]string{newKey(t)}, ""), nil)
	target := ups[2]
	forged := affinity.EncodeRoutingValue(target.addr)

	// Without a cookie, a hand-made routing header pins nothing: requests are still balanced.
	anon := newBrowser(t, false)
	anon.client.Jar = nil
	spread := map[string]bool{}
	for range 6 {
		r := anon.get(p, "/chat", routing, forged)
		spread[r.servedBy] = true
		if got := upstreamNamed(t, p, r.servedBy).last().route; got != "" {
			t.Errorf("the client's routing header reached %s as %q", r.servedBy, got)
		}
	}
	if len(spread) < 2 {
		t.Errorf("a client-sent routing header pinned every request to %v", spread)
	}

	// With a cookie, the cookie decides, whatever the header says.
	b := newBrowser(t, false)
	up := pin(t, b, p, "/chat")
	other := ups[0]
	if other == up {
		other = ups[1]
	}
	for range 4 {
		r := b.get(p, "/chat", routing, affinity.EncodeRoutingValue(other.addr))
		if r.servedBy != up.name {
			t.Fatalf("a client routing header moved the pinned client from %s to %s", up.name, r.servedBy)
		}
	}
}

func TestUpstreamNeverSeesTheAffinityCookie(t *testing.T) {
	// Every upstream fails its test if any request carried the affinity cookie (see newUpstream); this test also
	// checks that the other cookies arrive intact, over HTTP/2 and with HTTP/1.1's separate Cookie lines.
	ups := threeUpstreams(t)
	p := newProxy(t, ups, affinityConfig([]string{newKey(t)}, ""), nil)

	b := newBrowser(t, false)
	b.jar.SetCookies(p.url, []*http.Cookie{{Name: "theme", Value: "dark", Path: "/"}})
	up := pin(t, b, p, "/chat")
	b.get(p, "/chat")
	if got := up.last().cookies; len(got) != 1 || got[0] != "theme=dark" {
		t.Errorf("upstream saw cookies %q, want [theme=dark]", got)
	}

	h1 := newBrowser(t, true)
	h1.client.Jar = nil
	r := h1.get(p, "/chat", "Cookie", "theme=dark; lang=fr", "Cookie", cookieName+"="+b.token(p))
	if r.servedBy != up.name {
		t.Fatalf("HTTP/1.1 request with the token in its second Cookie line went to %s, want %s", r.servedBy, up.name)
	}
	if got := up.last().cookies; len(got) != 1 || got[0] != "theme=dark; lang=fr" {
		t.Errorf("upstream saw cookies %q, want [theme=dark; lang=fr]", got)
	}
}

func TestUpstreamCookieOfTheSameNameIsReplaced(t *testing.T) {
	ups := threeUpstreams(t)
	key := newKey(t)
	p := newProxy(t, ups, affinityConfig([]string{key}, ""), nil)
	b := newBrowser(t, false)
	r := b.get(p, "/chat?setcookie&cache")
	var own []string
	var other string
	for _, sc := range r.setCookies {
		switch {
		case strings.HasPrefix(sc, cookieName+"="):
			own = append(own, sc)
		case strings.HasPrefix(sc, "other="):
			other = sc
		}
	}
	if len(own) != 1 || strings.Contains(own[0], "from-upstream") {
		t.Fatalf("affinity cookies in the response: %q, want only the filter's", own)
	}
	if _, err := opener(t, key).Open(r.affinity(), cookieName); err != nil {
		t.Errorf("the filter's cookie does not open: %v", err)
	}
	if !strings.Contains(other, "Partitioned") {
		t.Errorf("the upstream's other cookie was not rewritten: %q", other)
	}
	if cc := r.header.Values("Cache-Control"); len(cc) != 1 || cc[0] != "max-age=60, private" {
		t.Errorf("Cache-Control = %q, want [max-age=60, private] (nocache)", cc)
	}
}
