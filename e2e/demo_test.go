package e2e

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/demo"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/serve"
)

// TestBrowserDemo runs the demo the way `make run` does — demo.Start's three nodes and shop, the proxy with the
// filter and affinity in front of the nodes — under the names it prints (shop.localhost, chat.localhost: Chromium
// resolves *.localhost itself and treats the two as different sites), and saves the screenshot of the shop page
// after the chat connected.
func TestBrowserDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d, err := demo.Start(ctx, demo.Options{Nodes: 3, Hold: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	var upstreams []*url.URL
	for _, u := range d.NodeURLs() {
		pu, _ := url.Parse(u)
		upstreams = append(upstreams, pu)
	}
	chatURL := "https://chat.localhost:" + startProxy(t, serve.Options{
		Listen:    "127.0.0.1:0",
		Upstreams: upstreams,
		TLS:       &serve.TLSOptions{SelfSigned: true, Hosts: []string{"chat.localhost"}},
		Filter:    startFilter(t, affinityFilter, ""),
		Logger:    quiet,
	})
	if err := d.SetChatURL(chatURL); err != nil {
		t.Fatal(err)
	}
	_, shopPort, _ := net.SplitHostPort(d.ShopAddr())
	if want := "https://" + demo.DefaultShopHost + ":" + shopPort + "/"; d.ShopURL() != want {
		t.Errorf("ShopURL = %q, want %q", d.ShopURL(), want)
	}
	tb := newTab(t)

	st := tb.runChat(d.ShopURL() + "?connects=" + strconv.Itoa(2*connects))
	if st.Total != 2*connects || st.CookieBack != st.Total || st.UnknownClient != 0 {
		t.Errorf("demo session: cookie back %d/%d, %d connects on a node that did not know the client",
			st.CookieBack, st.Total, st.UnknownClient)
	}
	got := named(tb.cookies(), "chat.localhost", demo.BrowserCookie)
	if len(got) != 1 || !partitionedUnder(got[0], "https://shop.localhost") {
		t.Errorf("BAYEUX_BROWSER: %s, want one partitioned under https://shop.localhost", describe(got))
	}
	tb.screenshot(screenshotPath)
}
