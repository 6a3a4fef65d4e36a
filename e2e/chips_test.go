package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/demo"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// The scenarios below share one browser (see browser_test.go). Each runs in its own browser context and under its own
// .test host names: shopN.test embeds chatN.test, two different sites, so every chat cookie is a third-party cookie
// in the shop's page.

// connects is how many long polls each session runs after its handshake.
const connects = 4

// defaultFilter is the filter's documented default policy: every cookie gets SameSite=None; Secure; Partitioned.
const defaultFilter = `{}`

// affinityCookie is the filter's default affinity cookie name.
const affinityCookie = config.DefaultAffinityCookieName

// affinityFilter is a filter configuration with affinity on (default attributes), sealed with a key made for this
// test binary: one configuration, so the tests share one filter host (see startFilter).
var affinityFilter = func() string {
	key := make([]byte, 32)
	rand.Read(key)
	return `{"affinity":{"enabled":true,"keys":["` + base64.StdEncoding.EncodeToString(key) + `"]}}`
}()

// screenshotPath is where the demo screenshot goes, for the closing note and for people reading CI output.
var screenshotPath = filepath.Join(testwasm.RepoRoot(), "build", "e2e", "demo-connected.png")

// TestBrowserControlWithoutFilter: the chat behind the same proxy without the filter. The browser must refuse the
// chat's cookies in the shop's iframe; if it did not, the tests that pass with the filter would prove nothing.
func TestBrowserControlWithoutFilter(t *testing.T) {
	chat := startChatSite(t, "chat1.test", siteOptions{NoFilter: true})
	shop := "https://shop1.test:" + startShop(t, chat)
	tb := newTab(t)

	st := tb.runChat(shop + "/?connects=" + strconv.Itoa(connects))
	if st.Total != connects || !st.NewBrowser {
		t.Fatalf("ran %d connects (want %d); handshake set BAYEUX_BROWSER: %t (want true)", st.Total, connects, st.NewBrowser)
	}
	if st.CookieBack != 0 {
		t.Errorf("BAYEUX_BROWSER came back on %d/%d cross-site connects without the filter: the browser is not blocking "+
			"third-party cookies, so this suite cannot prove anything", st.CookieBack, st.Total)
	}
	if got := named(tb.cookies(), "chat1.test", demo.BrowserCookie, demo.SessionCookie); len(got) != 0 {
		t.Errorf("the browser stored chat cookies without the filter: %s", describe(got))
	}
}

// TestBrowserControlNotPartitioned: the filter adds SameSite=None and Secure but not Partitioned. The cookies are
// then valid cross-site cookies that only the third-party-cookie block refuses — so this control shows that it is
// Partitioned, not SameSite, that makes the difference in the next tests.
func TestBrowserControlNotPartitioned(t *testing.T) {
	chat := startChatSite(t, "chat1b.test", siteOptions{Filter: `{"cookies":{"partitioned":false}}`})
	shop := "https://shop1b.test:" + startShop(t, chat)
	tb := newTab(t)

	st := tb.runChat(shop + "/?connects=" + strconv.Itoa(connects))
	if st.Total != connects || st.CookieBack != 0 {
		t.Errorf("BAYEUX_BROWSER came back on %d/%d connects with SameSite=None; Secure but no Partitioned, want 0/%d",
			st.CookieBack, st.Total, connects)
	}
	if got := named(tb.cookies(), "chat1b.test", demo.BrowserCookie); len(got) != 0 {
		t.Errorf("the browser stored an unpartitioned third-party cookie: %s", describe(got))
	}
}

// TestBrowserFilterCookieComesBack: with the filter, BAYEUX_BROWSER (and the session cookie) come back on every
// connect of the embedded chat.
func TestBrowserFilterCookieComesBack(t *testing.T) {
	chat := startChatSite(t, "chat2.test", siteOptions{Filter: defaultFilter})
	shop := "https://shop2.test:" + startShop(t, chat)
	tb := newTab(t)

	st := tb.runChat(shop + "/?connects=" + strconv.Itoa(connects))
	if st.Total != connects || st.CookieBack != connects {
		t.Fatalf("BAYEUX_BROWSER came back on %d/%d connects, want %d/%d", st.CookieBack, st.Total, connects, connects)
	}
	for i, c := range st.Connects {
		if !slices.Contains(c.CookieNames, demo.BrowserCookie) || !slices.Contains(c.CookieNames, demo.SessionCookie) {
			t.Errorf("connect %d carried cookies %q, want %s and %s", i+1, c.CookieNames, demo.BrowserCookie, demo.SessionCookie)
		}
	}
}

// TestBrowserAffinityPinsHandshakeNode: three chat nodes behind the proxy, affinity on. Every connect must land on
// the node that answered the handshake (CometD's clientId lives on that node only).
func TestBrowserAffinityPinsHandshakeNode(t *testing.T) {
	chat := startChatSite(t, "chat3.test", siteOptions{Nodes: 3, Filter: affinityFilter})
	shop := "https://shop3.test:" + startShop(t, chat)
	tb := newTab(t)

	st := tb.runChat(shop + "/?connects=" + strconv.Itoa(2*connects))
	if st.Total != 2*connects {
		t.Fatalf("ran %d connects, want %d", st.Total, 2*connects)
	}
	for i, c := range st.Connects {
		if c.Node != st.Node || c.ServedBy != st.Node || !c.Successful {
			t.Errorf("connect %d served by %s (%s, successful=%t), want the handshake node %s",
				i+1, c.ServedBy, c.Error, c.Successful, st.Node)
		}
		if slices.Contains(c.CookieNames, affinityCookie) {
			t.Errorf("connect %d: the upstream saw the affinity cookie (indirect mode must strip it): %q", i+1, c.CookieNames)
		}
	}
	if st.CookieBack != st.Total {
		t.Errorf("BAYEUX_BROWSER came back on %d/%d connects", st.CookieBack, st.Total)
	}
	aff := named(tb.cookies(), "chat3.test", affinityCookie)
	if len(aff) != 1 || !partitionedUnder(aff[0], "https://shop3.test") || !aff[0].HTTPOnly {
		t.Errorf("affinity cookie: %s, want one HttpOnly cookie partitioned under https://shop3.test", describe(aff))
	}
}

// TestBrowserNoAffinitySpreads is the control of the affinity test: the same three nodes without affinity. The
// balancer spreads the connects, so some reach a node that does not know the client — what affinity prevents.
func TestBrowserNoAffinitySpreads(t *testing.T) {
	chat := startChatSite(t, "chat3b.test", siteOptions{Nodes: 3, Filter: defaultFilter})
	shop := "https://shop3b.test:" + startShop(t, chat)
	tb := newTab(t)

	st := tb.runChat(shop + "/?connects=" + strconv.Itoa(2*connects))
	if st.UnknownClient == 0 {
		t.Errorf("all %d connects reached the handshake node %s without affinity; the affinity test proves nothing",
			st.Total, st.Node)
	}
}

// TestBrowserCookiesPartitionedUnderShop: DevTools' view of the cookie jar (Storage.getCookies) shows the chat's
// cookies stored for the chat's host, partitioned under the shop's site, with the attributes the filter added.
func TestBrowserCookiesPartitionedUnderShop(t *testing.T) {
	chat := startChatSite(t, "chat4.test", siteOptions{Filter: defaultFilter})
	shop := "https://shop4.test:" + startShop(t, chat)
	tb := newTab(t)

	tb.runChat(shop + "/?connects=1")
	all := tb.cookies()
	for _, name := range []string{demo.BrowserCookie, demo.SessionCookie} {
		got := named(all, "chat4.test", name)
		if len(got) != 1 {
			t.Errorf("%s: %s, want exactly one", name, describe(got))
			continue
		}
		c := got[0]
		if !partitionedUnder(c, "https://shop4.test") || !c.PartitionKey.HasCrossSiteAncestor {
			t.Errorf("%s partition key %+v, want top-level site https://shop4.test, cross-site ancestor", name, c.PartitionKey)
		}
		if !c.Secure || c.SameSite != network.CookieSameSiteNone || !c.HTTPOnly || c.Path != "/" {
			t.Errorf("%s stored as %s, want Secure, SameSite=None, HttpOnly, Path=/", name, describe(got))
		}
	}
}

// TestBrowserSecondSiteOwnPartition: the same chat embedded by a second shop site in the same browser gets a
// partition of its own: a new BAYEUX_BROWSER and affinity cookie, nothing carried over from the first shop.
func TestBrowserSecondSiteOwnPartition(t *testing.T) {
	chat := startChatSite(t, "chat5.test", siteOptions{Nodes: 3, Filter: affinityFilter})
	port := startShop(t, chat)
	tb := newTab(t)

	first := tb.runChat("https://shop5a.test:" + port + "/?connects=" + strconv.Itoa(connects))
	second := tb.runChat("https://shop5b.test:" + port + "/?connects=" + strconv.Itoa(connects))
	if !first.NewBrowser || !second.NewBrowser {
		t.Errorf("handshake set BAYEUX_BROWSER: first site %t, second site %t; want both (the second site must not "+
			"see the first one's cookie)", first.NewBrowser, second.NewBrowser)
	}
	for _, st := range []chatState{first, second} {
		if st.CookieBack != st.Total || st.UnknownClient != 0 {
			t.Errorf("session on %s: cookie back %d/%d, %d connects on a node that did not know the client",
				st.Node, st.CookieBack, st.Total, st.UnknownClient)
		}
	}
	all := tb.cookies()
	for _, name := range []string{demo.BrowserCookie, affinityCookie} {
		got := named(all, "chat5.test", name)
		var sites []string
		for _, c := range got {
			if c.PartitionKey != nil {
				sites = append(sites, c.PartitionKey.TopLevelSite)
			}
		}
		slices.Sort(sites)
		if !slices.Equal(sites, []string{"https://shop5a.test", "https://shop5b.test"}) || len(got) != 2 {
			t.Errorf("%s: %s, want one cookie partitioned under each shop", name, describe(got))
			continue
		}
		if got[0].Value == got[1].Value {
			t.Errorf("%s has the same value in both partitions", name)
		}
	}
}

// TestBrowserFirstParty: the chat opened directly (first party) through the filter still keeps its session; the
// cookies are then partitioned under the chat's own site.
func TestBrowserFirstParty(t *testing.T) {
	chat := startChatSite(t, "chat6.test", siteOptions{Filter: defaultFilter})
	tb := newTab(t)

	st := tb.runChat(chat + "/chat?connects=" + strconv.Itoa(connects))
	if st.Total != connects || st.CookieBack != connects {
		t.Errorf("first party: BAYEUX_BROWSER came back on %d/%d connects, want %d/%d", st.CookieBack, st.Total, connects, connects)
	}
	got := named(tb.cookies(), "chat6.test", demo.BrowserCookie)
	if len(got) != 1 || !partitionedUnder(got[0], "https://chat6.test") || got[0].PartitionKey.HasCrossSiteAncestor {
		t.Errorf("first-party BAYEUX_BROWSER: %s, want one partitioned under https://chat6.test, no cross-site ancestor",
			describe(got))
	}
}

// TestBrowserDeleteCookie: the chat's disconnect deletes BAYEUX_BROWSER with Max-Age=0. Through the filter the
// deletion carries Partitioned too, so the browser removes the partitioned cookie (a deletion without it would
// miss the partition and leave the cookie behind). The session cookie, not deleted, stays.
func TestBrowserDeleteCookie(t *testing.T) {
	chat := startChatSite(t, "chat7.test", siteOptions{Filter: defaultFilter})
	shop := "https://shop7.test:" + startShop(t, chat)
	tb := newTab(t)

	st := tb.runChat(shop + "/?connects=1&disconnect=1")
	if st.CookieBack != 1 || st.Disconnect == nil || !st.Disconnect.Successful {
		t.Fatalf("session before the deletion: cookie back %d/%d, disconnect %+v", st.CookieBack, st.Total, st.Disconnect)
	}
	all := tb.cookies()
	if got := named(all, "chat7.test", demo.BrowserCookie); len(got) != 0 {
		t.Errorf("BAYEUX_BROWSER survived its deletion: %s", describe(got))
	}
	if got := named(all, "chat7.test", demo.SessionCookie); len(got) != 1 || !partitionedUnder(got[0], "https://shop7.test") {
		t.Errorf("JSESSIONID: %s, want it still there, partitioned under https://shop7.test", describe(got))
	}
}

// named returns the cookies of domain with one of the names.
func named(cookies []*network.Cookie, domain string, names ...string) []*network.Cookie {
	var out []*network.Cookie
	for _, c := range cookies {
		if strings.TrimPrefix(c.Domain, ".") == domain && slices.Contains(names, c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// partitionedUnder reports whether c is partitioned under the top-level site (scheme://registrable-domain).
func partitionedUnder(c *network.Cookie, site string) bool {
	return c.PartitionKey != nil && c.PartitionKey.TopLevelSite == site
}

// describe formats cookies for failure messages.
func describe(cs []*network.Cookie) string {
	if len(cs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Name + "@" + c.Domain + c.Path)
		if c.PartitionKey != nil {
			b.WriteString(" partition=" + c.PartitionKey.TopLevelSite)
		}
		if c.Secure {
			b.WriteString(" Secure")
		}
		if c.HTTPOnly {
			b.WriteString(" HttpOnly")
		}
		b.WriteString(" SameSite=" + string(c.SameSite))
	}
	return b.String()
}
