package bench

import (
	"net/http"
	"strconv"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/seal"
)

// ChatCookies are the Set-Cookie values of a typical chat-server response: CometD's browser cookie, a servlet
// session cookie with an expiry (whose comma must survive), and the load balancer's affinity cookie. None of them
// is CHIPS-ready, so the default policy rewrites all three: the benchmarks measure the filter doing real work.
var ChatCookies = [3]string{
	"BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; Path=/; HttpOnly",
	"JSESSIONID=node01ab2cd3ef4gh5ij6kl7mn8op9.node0; Path=/genesys; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly",
	"BIGipServer~gms~pool_gms_8080=rd5o00000000000000000000ffff0a000005o8080; path=/; Httponly; Secure; SameSite=Lax",
}

// ChatUserAgent is a current desktop Chrome: a client that gets SameSite=None.
const ChatUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// ChatRequest is the request head of a CometD connect as a proxy's filter sees it: pseudo-headers first, then the
// browser's headers, with the cookies the chat widget sends back.
func ChatRequest() [][2]string {
	return [][2]string{
		{":authority", "chat.example.com"},
		{":path", "/genesys/cometd/connect"},
		{":method", "POST"},
		{":scheme", "https"},
		{"user-agent", ChatUserAgent},
		{"accept", "application/json"},
		{"cookie", "BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; JSESSIONID=node01ab2cd3ef4gh5ij6kl7mn8op9.node0"},
		{"content-type", "application/json;charset=UTF-8"},
		{"content-length", "0"},
	}
}

// ChatResponse is the matching response head: eleven headers, three of them Set-Cookie, interleaved the way a
// servlet container and a load balancer emit them.
func ChatResponse() [][2]string {
	return [][2]string{
		{":status", "200"},
		{"content-type", "application/json;charset=utf-8"},
		{"content-length", "512"},
		{"date", "Tue, 04 Mar 2025 10:00:00 GMT"},
		{"cache-control", "no-cache, no-store"},
		{"x-chat-node", "gms-2"},
		{"set-cookie", ChatCookies[0]},
		{"set-cookie", ChatCookies[1]},
		{"vary", "Accept-Encoding"},
		{"set-cookie", ChatCookies[2]},
		{"x-request-id", "6b3e0d2a-5f4c-4a7e-9c1d-2e8f0a1b3c4d"},
	}
}

// chatBody is the upstream's response body, sized like a CometD connect reply.
var chatBody = func() []byte {
	b := []byte(`[{"channel":"/meta/connect","successful":true,"advice":{"interval":0,"timeout":30000},"id":"`)
	for len(b) < 500 {
		b = append(b, 'x')
	}
	return append(b, `"}]`...)
}()

// ChatUpstream is the upstream of the serve benchmark: it answers every request with the chat response's headers
// (three Set-Cookie) and a small JSON body, doing no other work, so that the proxy dominates the measurement.
func ChatUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json;charset=utf-8"}
		h["Content-Length"] = []string{strconv.Itoa(len(chatBody))}
		h["Cache-Control"] = []string{"no-cache, no-store"}
		h["X-Chat-Node"] = []string{"gms-2"}
		h["Set-Cookie"] = ChatCookies[:]
		h["Vary"] = []string{"Accept-Encoding"}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(chatBody)
	})
}

// ChatUpstreamAddress is the upstream host that serves every benchmark stream (property upstream.address).
const ChatUpstreamAddress = "10.0.0.2:8080"

// AffinityConfigPath is the affinity configuration the benchmarks run: testdata/config/affinity.json, affinity on
// with its defaults (refresh interval one minute, idle limit thirty minutes) and the test key.
const AffinityConfigPath = "testdata/config/affinity.json"

// AffinityRequest is ChatRequest carrying, as a second cookie header, the affinity cookie of a client pinned to
// ChatUpstreamAddress an hour before now and last seen ten minutes before now: honoured, and stale enough that
// every response refreshes it. A stream thus opens one token, reads upstream.address and seals one token, the
// whole affinity path. The token stays valid for twenty minutes after now.
func AffinityRequest(cfg *config.Config, now time.Time) ([][2]string, error) {
	a := &cfg.Affinity
	value, err := a.Sealer.Seal(seal.Token{
		Upstream: ChatUpstreamAddress,
		Issued:   now.Add(-time.Hour),
		LastSeen: now.Add(-10 * time.Minute),
	}, a.CookieName)
	if err != nil {
		return nil, err
	}
	return append(ChatRequest(), [2]string{"cookie", a.CookieName + "=" + value}), nil
}
