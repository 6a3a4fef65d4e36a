package demo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.DiscardHandler)

// post sends a Bayeux message to h and returns the recorded response.
func post(t *testing.T, h http.Handler, path, body string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	return v
}

func TestHandshakeSetsCookiesLikeGMS(t *testing.T) {
	c := NewChat(ChatOptions{Node: "gms-7", Logger: quiet})
	rec := post(t, c, "/cometd/handshake", `[{"channel":"/meta/handshake"}]`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200", rec.Code)
	}
	if got := rec.Header().Get(NodeHeader); got != "gms-7" {
		t.Errorf("%s = %q, want gms-7", NodeHeader, got)
	}
	sc := rec.Header().Values("Set-Cookie")
	if len(sc) != 2 {
		t.Fatalf("Set-Cookie = %q, want BAYEUX_BROWSER and JSESSIONID", sc)
	}
	// Exactly what GMS sends: no SameSite, no Secure, no Partitioned — adding them is the proxy's job.
	name, attrs, _ := strings.Cut(sc[0], ";")
	if !strings.HasPrefix(name, BrowserCookie+"=") || len(name) != len(BrowserCookie)+1+32 {
		t.Errorf("first cookie %q, want BAYEUX_BROWSER=<32 hex>", name)
	}
	if attrs != " HttpOnly; Path=/" {
		t.Errorf("BAYEUX_BROWSER attributes %q, want \" HttpOnly; Path=/\"", attrs)
	}
	if !strings.HasPrefix(sc[1], SessionCookie+"=") || !strings.HasSuffix(sc[1], "; Path=/; HttpOnly") {
		t.Errorf("second cookie %q, want JSESSIONID=…; Path=/; HttpOnly", sc[1])
	}
	for _, line := range sc {
		if l := strings.ToLower(line); strings.Contains(l, "samesite") || strings.Contains(l, "secure") || strings.Contains(l, "partitioned") {
			t.Errorf("upstream cookie %q carries an attribute the real server does not send", line)
		}
	}
	hs := decode[HandshakeReply](t, rec)
	if !hs.Successful || hs.Node != "gms-7" || len(hs.ClientID) != 32 || !hs.NewBrowser || hs.Channel != "/meta/handshake" {
		t.Errorf("handshake reply %+v", hs)
	}
}

func TestHandshakeKeepsExistingBrowserCookie(t *testing.T) {
	c := NewChat(ChatOptions{Logger: quiet})
	rec := post(t, c, "/cometd/handshake", `{}`, &http.Cookie{Name: BrowserCookie, Value: "abc"})
	for _, line := range rec.Header().Values("Set-Cookie") {
		if strings.HasPrefix(line, BrowserCookie+"=") {
			t.Errorf("handshake replaced the browser's BAYEUX_BROWSER: %q", line)
		}
	}
	if hs := decode[HandshakeReply](t, rec); hs.NewBrowser {
		t.Error("newBrowser = true for a browser that sent BAYEUX_BROWSER")
	}
}

func TestConnectReportsCookiesAndClient(t *testing.T) {
	c := NewChat(ChatOptions{Node: "gms-2", Logger: quiet})
	id := decode[HandshakeReply](t, post(t, c, "/cometd/handshake", `{}`)).ClientID
	tests := []struct {
		name     string
		body     string
		cookies  []*http.Cookie
		want     ConnectReply
		wantCode int
	}{
		{
			name:    "known client with cookie, Bayeux array",
			body:    `[{"channel":"/meta/connect","clientId":"` + id + `"}]`,
			cookies: []*http.Cookie{{Name: SessionCookie, Value: "s"}, {Name: BrowserCookie, Value: "b"}},
			want: ConnectReply{Channel: "/meta/connect", Successful: true, ClientID: id, Node: "gms-2",
				SawBrowserCookie: true, CookieNames: []string{SessionCookie, BrowserCookie}},
		},
		{
			name: "known client without cookie, plain object",
			body: `{"clientId":"` + id + `"}`,
			want: ConnectReply{Channel: "/meta/connect", Successful: true, ClientID: id, Node: "gms-2", CookieNames: []string{}},
		},
		{
			name:    "client handshaken elsewhere",
			body:    `{"clientId":"deadbeef"}`,
			cookies: []*http.Cookie{{Name: BrowserCookie, Value: "b"}},
			want: ConnectReply{Channel: "/meta/connect", Error: "402::Unknown client", ClientID: "deadbeef", Node: "gms-2",
				SawBrowserCookie: true, CookieNames: []string{BrowserCookie}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(t, c, "/cometd/connect", tt.body, tt.cookies...)
			got := decode[ConnectReply](t, rec)
			if got.Channel != tt.want.Channel || got.Successful != tt.want.Successful || got.Error != tt.want.Error ||
				got.ClientID != tt.want.ClientID || got.Node != tt.want.Node || got.SawBrowserCookie != tt.want.SawBrowserCookie ||
				!slices.Equal(got.CookieNames, tt.want.CookieNames) {
				t.Errorf("reply\n got %+v\nwant %+v", got, tt.want)
			}
			if rec.Header().Get("Set-Cookie") != "" {
				t.Errorf("connect set a cookie: %q", rec.Header().Values("Set-Cookie"))
			}
			// The page reads sawBayeuxBrowser by this JSON name.
			if !strings.Contains(rec.Body.String(), `"sawBayeuxBrowser":`) {
				t.Errorf("body %s lacks sawBayeuxBrowser", rec.Body)
			}
		})
	}
}

func TestConnectRejectsBadMessages(t *testing.T) {
	c := NewChat(ChatOptions{Logger: quiet})
	for _, body := range []string{``, `nope`, `[]`, `"x"`, `{"clientId":` + strings.Repeat(" ", 5000) + `"a"}`} {
		if rec := post(t, c, "/cometd/connect", body); rec.Code != http.StatusBadRequest {
			t.Errorf("body %.20q: status %d, want 400", body, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/cometd/connect", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /cometd/connect: status %d, want 405", rec.Code)
	}
	if rec.Header().Get(NodeHeader) == "" {
		t.Errorf("error response does not name the node")
	}
}

func TestDisconnectDeletesBrowserCookie(t *testing.T) {
	c := NewChat(ChatOptions{Node: "gms-3", Logger: quiet})
	id := decode[HandshakeReply](t, post(t, c, "/cometd/handshake", `{}`)).ClientID
	rec := post(t, c, "/cometd/disconnect", `{"clientId":"`+id+`"}`)
	if got := rec.Header().Values("Set-Cookie"); !slices.Equal(got, []string{"BAYEUX_BROWSER=; Max-Age=0; HttpOnly; Path=/"}) {
		t.Errorf("Set-Cookie = %q, want the deletion of BAYEUX_BROWSER", got)
	}
	if d := decode[ConnectReply](t, rec); !d.Successful || d.Channel != "/meta/disconnect" {
		t.Errorf("disconnect reply %+v", d)
	}
	// The client is gone: the next connect is refused like on a node that never knew it.
	if got := decode[ConnectReply](t, post(t, c, "/cometd/connect", `{"clientId":"`+id+`"}`)); got.Successful {
		t.Error("connect after disconnect succeeded")
	}
}

func TestConnectHoldsLikeALongPoll(t *testing.T) {
	c := NewChat(ChatOptions{Hold: time.Hour, Logger: quiet})
	// A client that goes away ends the hold: nothing is written, and the handler returns.
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/cometd/connect", strings.NewReader(`{"clientId":"x"}`))
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.ServeHTTP(rec, req)
	}()
	cancel()
	<-done
	if rec.Body.Len() != 0 {
		t.Errorf("abandoned long poll answered %q", rec.Body)
	}
}

func TestClientMemoryIsBounded(t *testing.T) {
	c := NewChat(ChatOptions{Logger: quiet})
	first := decode[HandshakeReply](t, post(t, c, "/cometd/handshake", `{}`)).ClientID
	for range maxClients {
		c.remember(randomToken())
	}
	if c.known(first) {
		t.Error("the oldest client was not forgotten")
	}
	if len(c.clients) != maxClients || len(c.order) != maxClients {
		t.Errorf("remembers %d/%d clients, want %d", len(c.clients), len(c.order), maxClients)
	}
}

func TestPages(t *testing.T) {
	c := NewChat(ChatOptions{Node: `gms-<b>`, Logger: quiet})
	for path, want := range map[string]string{
		"/chat":             `data-embedded="false"`,
		"/widget":           `data-embedded="true"`,
		"/":                 `href="chat"`,
		"/static/chat.js":   `cometd/handshake`,
		"/static/demo.css":  `.chat-frame`,
		"/static/shop.js":   `chips-demo-chat`,
		"/templates/x.html": "",
	} {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if want == "" {
			if rec.Code != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404", path, rec.Code)
			}
			continue
		}
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: status %d, body lacks %q", path, rec.Code, want)
		}
		if strings.Contains(rec.Body.String(), "gms-<b>") {
			t.Errorf("GET %s: node name not escaped", path)
		}
	}
}

func TestShopEmbedsWidget(t *testing.T) {
	s, err := NewShop("https://chat.example.test:9443/", quiet)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ query, want string }{
		{"", `src="https://chat.example.test:9443/widget"`},
		{"?connects=5&disconnect=1", `src="https://chat.example.test:9443/widget?connects=5&amp;disconnect=1"`},
		{"?connects=-3&disconnect=yes&x=1", `src="https://chat.example.test:9443/widget"`},
		{"?connects=99999", `src="https://chat.example.test:9443/widget?connects=1000"`},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/"+tt.query, nil)
		req.Host = "shop.example.test"
		s.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, tt.want) {
			t.Errorf("GET /%s: status %d, want iframe %s in\n%s", tt.query, rec.Code, tt.want, body)
		}
		if !strings.Contains(body, `data-chat-origin="https://chat.example.test:9443"`) {
			t.Errorf("GET /%s: the page does not pin the chat origin", tt.query)
		}
		if !strings.Contains(body, "shop.example.test") {
			t.Errorf("GET /%s: the page does not name its own host", tt.query)
		}
	}
}

func TestShopWithoutChatURLAnswers503(t *testing.T) {
	s, err := NewShop("", quiet)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d before SetChatURL, want 503", rec.Code)
	}
	if err := s.SetChatURL("https://chat.test:1"); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `src="https://chat.test:1/widget"`) {
		t.Errorf("status %d after SetChatURL, want 200 with the widget", rec.Code)
	}
}

func TestShopRejectsBadChatURL(t *testing.T) {
	for _, u := range []string{"chat.test", "ftp://chat.test", "https://", "https://chat.test/?q=1", "://x"} {
		if _, err := NewShop(u, quiet); err == nil || !strings.HasPrefix(err.Error(), "demo: chat URL") {
			t.Errorf("NewShop(%q) = %v, want a demo: chat URL error", u, err)
		}
	}
}

func TestStartRunsNodesAndShop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := Start(ctx, Options{Nodes: 3, Hold: -1, ShopHosts: []string{"shop.example.test"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The order a command follows: nodes first, then the proxy in front of them, then the shop learns its URL.
	if err := d.SetChatURL("https://chat.example.test:9443"); err != nil {
		t.Fatal(err)
	}

	urls := d.NodeURLs()
	if len(urls) != 3 {
		t.Fatalf("NodeURLs = %q, want 3", urls)
	}
	for i, u := range urls {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("node URL %q is not a loopback http URL", u)
		}
		res, err := http.Post(u+"/cometd/handshake", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if got, want := res.Header.Get(NodeHeader), "gms-"+string(rune('1'+i)); got != want {
			t.Errorf("node %d answers as %q, want %q", i, got, want)
		}
	}

	shopURL, err := url.Parse(d.ShopURL())
	if err != nil || shopURL.Scheme != "https" || shopURL.Hostname() != "shop.example.test" {
		t.Fatalf("ShopURL = %q, want https://shop.example.test:PORT/", d.ShopURL())
	}
	client := &http.Client{Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		// The certificate is self-signed; the test checks the names it covers instead of trusting it.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "shop.example.test"},
	}}
	res, err := client.Get("https://" + d.ShopAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "https://chat.example.test:9443/widget") {
		t.Errorf("shop page: status %d, no widget iframe in\n%s", res.StatusCode, body)
	}
	leaf := res.TLS.PeerCertificates[0]
	for _, name := range []string{"shop.example.test", "localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("shop certificate does not cover %s: %v", name, err)
		}
	}
	if res.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("shop negotiated %q, want h2", res.TLS.NegotiatedProtocol)
	}

	// Ending the context stops everything, without a call to Close: each server reports it (a server that never
	// stops fails the test at go test's -timeout, with every goroutine's stack).
	cancel()
	for _, s := range append([]*Server{d.shop}, d.nodes...) {
		<-s.Done()
	}
	for _, u := range urls {
		if res, err := http.Post(u+"/cometd/handshake", "application/json", strings.NewReader(`{}`)); err == nil {
			res.Body.Close()
			t.Errorf("node %s still answers after the context ended", u)
		}
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close after the context ended: %v", err)
	}
}

func TestStartValidatesOptions(t *testing.T) {
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{ChatURL: "https://c.test", Nodes: -1}, "demo: Options.Nodes"},
		{Options{ChatURL: "https://c.test", Nodes: 1, NodeAddrs: []string{"a", "b"}}, "demo: Options.NodeAddrs"},
		{Options{ChatURL: "nope"}, "demo: chat URL"},
		{Options{ChatURL: "https://c.test", Nodes: 1, NodeAddrs: []string{"256.0.0.1:1"}, Logger: quiet}, "demo: chat node gms-1"},
	} {
		d, err := Start(context.Background(), tt.o)
		if err == nil {
			d.Close()
		}
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Start(%+v) = %v, want error starting %q", tt.o, err, tt.want)
		}
	}
}
