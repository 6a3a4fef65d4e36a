package e2e

import (
	"testing"
)

// TestFirefoxCometD runs the real CometD (three nodes, the client in the shop's iframe) in Firefox, in both modes,
// with the filter and affinity and without the filter (the control). As installed, Firefox keeps BAYEUX_BROWSER
// in the shop's jar even without the filter, but nothing keeps the session on one node, so it still fails; with
// third-party cookies blocked nothing the proxy adds brings the cookies back.
func TestFirefoxCometD(t *testing.T) {
	for _, c := range []struct {
		mode   firefoxMode
		filter bool
		want   string // "kept": one handshake and a steady session; "lost": the page gave up
	}{
		{firefoxDefault, false, "lost"},
		{firefoxDefault, true, "kept"},
		{firefoxBlocked, false, "lost"},
		{firefoxBlocked, true, "lost"},
	} {
		name := c.mode.name + "/without-filter"
		o := siteOptions{NoFilter: true}
		if c.filter {
			name, o = c.mode.name+"/with-filter-and-affinity", siteOptions{Filter: affinityFilter}
		}
		t.Run(name, func(t *testing.T) {
			site := startCometDSite(t, "cometd-ff.localhost", o)
			shop := "https://shop-ffd.localhost:" + startShop(t, site.url)
			ft := newFoxTab(t, c.mode)
			st := runCometD(t, ft, shop+cometdPage, settled)
			got := "lost"
			if !st.Lost && st.Handshakes == 1 && len(st.steady()) == 1 && st.UnknownSession == 0 {
				got = "kept"
			}
			t.Logf("Firefox %s, filter %t: session %s after %d handshakes, %d replies 402::session_unknown",
				c.mode.name, c.filter, got, st.Handshakes, st.UnknownSession)
			if got != c.want {
				t.Errorf("Firefox %s, filter %t: session %s, want %s (failures %+v)", c.mode.name, c.filter, got,
					c.want, st.Failures)
			}
		})
	}
}
