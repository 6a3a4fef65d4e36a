package e2e

import (
	"strconv"
	"testing"
)

// Firefox has its own cookie rules: as installed it keeps every third-party cookie in a jar of the top-level site
// (Total Cookie Protection), and with network.cookie.cookieBehavior = 1 it blocks third-party cookies. What it does
// with the filter's cookies in the shop's iframe is observed here, in both modes, with the filter and without it
// (the control), on the demo chat. The observations are compared with the expected table as a whole, and README's
// table says the same.

// firefoxOutcome is what one run observed. Each field is "" when the scenario cannot tell (a cookie the browser
// never keeps can be neither partitioned nor deleted).
type firefoxOutcome struct {
	Session   string // "kept": BAYEUX_BROWSER came back on every connect; "lost": on none
	Partition string // "per top-level site": a second shop got a fresh BAYEUX_BROWSER; "shared": it got the first's
	Deletion  string // "deleted": after the chat's Max-Age=0, the next visit got a fresh cookie; "kept": it did not
	Affinity  string // three nodes: "one node" when every connect reached the handshake's node, else "spread"
}

// firefoxExpected is what Firefox ESR 153 does, as this suite observed it.
var firefoxExpected = []struct {
	mode   firefoxMode
	filter bool
	want   firefoxOutcome
}{
	{firefoxDefault, false, firefoxOutcome{"kept", "per top-level site", "deleted", "spread"}},
	{firefoxDefault, true, firefoxOutcome{"kept", "per top-level site", "deleted", "one node"}},
	{firefoxBlocked, false, firefoxOutcome{"lost", "", "", "spread"}},
	{firefoxBlocked, true, firefoxOutcome{"lost", "", "", "spread"}},
}

func TestFirefoxCookies(t *testing.T) {
	for _, c := range firefoxExpected {
		name := c.mode.name + "/without-filter"
		if c.filter {
			name = c.mode.name + "/with-filter"
		}
		t.Run(name, func(t *testing.T) {
			got := observeFirefox(t, c.mode, c.filter)
			t.Logf("Firefox %s, filter %t: %+v", c.mode.name, c.filter, got)
			if got != c.want {
				t.Errorf("Firefox %s, filter %t:\n got %+v\nwant %+v", c.mode.name, c.filter, got, c.want)
			}
		})
	}
}

// observeFirefox runs the cookie scenarios in one tab (one cookie jar) of the Firefox of mode: the chat in
// shop-ffa's page, then in shop-ffb's, then back in shop-ffa's with a disconnect that deletes BAYEUX_BROWSER, and
// the three-node chat in shop-ffc's page.
func observeFirefox(t *testing.T, mode firefoxMode, withFilter bool) firefoxOutcome {
	t.Helper()
	site, affinitySite := siteOptions{NoFilter: true}, siteOptions{Nodes: 3, NoFilter: true}
	if withFilter {
		site, affinitySite = siteOptions{Filter: defaultFilter}, siteOptions{Nodes: 3, Filter: affinityFilter}
	}
	port := startShop(t, startChatSite(t, "chat-ff.localhost", site))
	affinityPort := startShop(t, startChatSite(t, "chat-ffc.localhost", affinitySite))
	ft := newFoxTab(t, mode)
	shopA := "https://shop-ffa.localhost:" + port
	shopB := "https://shop-ffb.localhost:" + port

	var out firefoxOutcome
	first := runChat(t, ft, shopA+"/?connects="+strconv.Itoa(connects))
	switch {
	case first.Total == connects && first.CookieBack == connects:
		out.Session = "kept"
	case first.CookieBack == 0:
		out.Session = "lost"
	default:
		t.Fatalf("BAYEUX_BROWSER came back on %d of %d connects", first.CookieBack, first.Total)
	}
	if out.Session == "kept" {
		if second := runChat(t, ft, shopB+"/?connects=1"); second.NewBrowser {
			out.Partition = "per top-level site"
		} else {
			out.Partition = "shared"
		}
		again := runChat(t, ft, shopA+"/?connects=1&disconnect=1")
		if again.NewBrowser || again.Disconnect == nil || !again.Disconnect.Successful {
			t.Fatalf("back on %s: handshake set a new BAYEUX_BROWSER: %t (want the kept one), disconnect %+v",
				shopA, again.NewBrowser, again.Disconnect)
		}
		if after := runChat(t, ft, shopA+"/?connects=1"); after.NewBrowser {
			out.Deletion = "deleted"
		} else {
			out.Deletion = "kept"
		}
	}
	pinned := runChat(t, ft, "https://shop-ffc.localhost:"+affinityPort+"/?connects="+strconv.Itoa(2*connects))
	if pinned.UnknownClient == 0 && pinned.Total == 2*connects {
		out.Affinity = "one node"
	} else {
		out.Affinity = "spread"
	}
	return out
}
