package e2e

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/demo"
)

// These scenarios run the real CometD: three cometd-nodejs-server nodes behind wasmhost's proxy, and the CometD
// JavaScript client, long-polling, in a cross-site iframe of the demo shop, in Chromium with third-party cookies
// blocked. The server sets `BAYEUX_BROWSER=<id>; HttpOnly` on the handshake and answers every later message that
// comes without it, or reaches a node that does not hold the session, with 402::session_unknown, which sends the
// client back to handshaking. The page (e2e/cometd/page/chat.js) reports its sessions; every node reports its
// replies on stdout.

// cometdNodes is how many CometD nodes stand behind the proxy.
const cometdNodes = 3

// cometdState mirrors the state the CometD chat page reports.
type cometdState struct {
	Handshakes     int `json:"handshakes"`
	UnknownSession int `json:"unknownSession"` // replies 402::session_unknown the client received
	Failures       []struct {
		Channel     string `json:"channel"`
		Error       string `json:"error"`
		Node        string `json:"node"`        // the node that answered
		SessionNode string `json:"sessionNode"` // the node that answered the session's handshake
	} `json:"failures"`
	Sessions []cometdSession `json:"sessions"`
	Lost     bool            `json:"lost"` // the page gave up after repeated handshakes without a steady session
}

// cometdSession is one handshake's session as the client saw it.
type cometdSession struct {
	ClientID   string   `json:"clientId"`
	Node       string   `json:"node"`     // the node that answered the handshake
	Connects   int      `json:"connects"` // successful /meta/connect replies
	RoundTrips int      `json:"roundTrips"`
	Nodes      []string `json:"nodes"` // every node that answered the session's connects and delivered its messages
	Steady     bool     `json:"steady"`
}

// steady returns the sessions that reached `connects` connects and round trips.
func (s cometdState) steady() []cometdSession {
	var out []cometdSession
	for _, x := range s.Sessions {
		if x.Steady {
			out = append(out, x)
		}
	}
	return out
}

// settled is true once the page either kept a session or gave up.
func settled(s cometdState) bool { return s.Lost || len(s.steady()) > 0 }

// cometdSite is the chat site of a scenario: the nodes and the proxy in front of them.
type cometdSite struct {
	url   string
	nodes []*cometdNode
}

// startCometDSite runs cometdNodes real CometD nodes behind wasmhost's proxy with the filter o asks for.
func startCometDSite(t *testing.T, host string, o siteOptions) *cometdSite {
	t.Helper()
	site := &cometdSite{}
	var upstreams []*url.URL
	for i := range cometdNodes {
		n := startCometDNode(t, "cometd-"+strconv.Itoa(i+1))
		site.nodes = append(site.nodes, n)
		upstreams = append(upstreams, n.url)
	}
	site.url = startChatProxy(t, host, upstreams, o)
	return site
}

// node returns the node called name.
func (s *cometdSite) node(t *testing.T, name string) *cometdNode {
	t.Helper()
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	t.Fatalf("e2e: no CometD node %q", name)
	return nil
}

// stop stops every node and returns the replies each sent, by node name.
func (s *cometdSite) stop() map[string][]bayeuxReply {
	out := make(map[string][]bayeuxReply)
	for _, n := range s.nodes {
		out[n.name] = n.stop()
	}
	return out
}

// unknownSessions counts the 402::session_unknown replies in replies.
func unknownSessions(replies map[string][]bayeuxReply) int {
	n := 0
	for _, rs := range replies {
		for _, r := range rs {
			if strings.HasPrefix(r.Error, "402::") {
				n++
			}
		}
	}
	return n
}

// repliesOf returns the names of the nodes that sent a reply matching keep.
func repliesOf(replies map[string][]bayeuxReply, keep func(bayeuxReply) bool) []string {
	var nodes []string
	for name, rs := range replies {
		if slices.ContainsFunc(rs, keep) {
			nodes = append(nodes, name)
		}
	}
	slices.Sort(nodes)
	return nodes
}

// runCometD opens the shop page with the CometD chat and waits for the page's report that until accepts.
func runCometD(t *testing.T, p browserPage, pageURL string, until func(cometdState) bool) cometdState {
	t.Helper()
	p.open(pageURL)
	return waitCometD(t, p, until)
}

// waitCometD waits for the next report of the open CometD page that until accepts.
func waitCometD(t *testing.T, p browserPage, until func(cometdState) bool) cometdState {
	t.Helper()
	return waitReportOf(t, p.context(), p.reports(), "chips-e2e-cometd", until)
}

// cometdPage is the shop page's query for the CometD chat: a session is steady after this many connects.
const cometdPage = "/?connects=4"

// cometdRun is what one scenario observed: the page's last report, the tab's cookies when the page settled, and
// every reply of every node.
type cometdRun struct {
	state   cometdState
	jar     []*network.Cookie
	replies map[string][]bayeuxReply
}

// runCometDScenario runs the chat at chatHost (with o's filter) in the page of shopHost until it settles, then
// closes the tab and stops the nodes.
func runCometDScenario(t *testing.T, chatHost, shopHost string, o siteOptions) cometdRun {
	t.Helper()
	site := startCometDSite(t, chatHost, o)
	shop := "https://" + shopHost + ":" + startShop(t, site.url)
	tb := newTab(t)
	st := runCometD(t, tb, shop+cometdPage, settled)
	jar := tb.cookies()
	tb.close()
	return cometdRun{state: st, jar: jar, replies: site.stop()}
}

// TestCometDWithoutFilter: the proxy without the filter. The browser drops BAYEUX_BROWSER in the shop's iframe, so
// every message after the handshake is answered 402::session_unknown and the client handshakes again and again.
func TestCometDWithoutFilter(t *testing.T) {
	run := runCometDScenario(t, "cometd1.test", "shopc1.test", siteOptions{NoFilter: true})
	st, replies := run.state, run.replies
	if !st.Lost || len(st.steady()) != 0 {
		t.Fatalf("without the filter the session was kept: %d steady sessions in %d handshakes", len(st.steady()), st.Handshakes)
	}
	if st.UnknownSession < st.Handshakes-1 || unknownSessions(replies) < st.UnknownSession {
		t.Errorf("402::session_unknown: the client got %d, the nodes sent %d, in %d handshakes; want at least one per "+
			"handshake before the last", st.UnknownSession, unknownSessions(replies), st.Handshakes)
	}
	t.Logf("without the filter: %d handshakes, %d replies 402::session_unknown (nodes: %d)",
		st.Handshakes, st.UnknownSession, unknownSessions(replies))
	if got := named(run.jar, "cometd1.test", demo.BrowserCookie); len(got) != 0 {
		t.Errorf("the browser stored BAYEUX_BROWSER without the filter: %s", describe(got))
	}
}

// TestCometDFilterWithoutAffinity: the filter partitions BAYEUX_BROWSER, so the cookie comes back, but without
// affinity the balancer spreads the session's messages over the nodes, and the nodes that did not answer the
// handshake do not know the session: it hops and fails.
func TestCometDFilterWithoutAffinity(t *testing.T) {
	run := runCometDScenario(t, "cometd2.test", "shopc2.test", siteOptions{Filter: defaultFilter})
	st, replies := run.state, run.replies
	if !st.Lost || len(st.steady()) != 0 {
		t.Fatalf("without affinity the session was kept: %d steady sessions in %d handshakes", len(st.steady()), st.Handshakes)
	}
	hops := 0 // 402s from a node other than the one that answered the session's handshake
	for _, f := range st.Failures {
		if strings.HasPrefix(f.Error, "402::") && f.Node != "" && f.Node != f.SessionNode {
			hops++
		}
	}
	nodes := repliesOf(replies, func(bayeuxReply) bool { return true })
	if hops == 0 || len(nodes) < 2 {
		t.Errorf("Bayeux replies from %v; no message of a session reached a node other than its handshake's "+
			"(failures %+v); want the session to hop between nodes and fail", nodes, st.Failures)
	}
	t.Logf("filter without affinity: %d handshakes, %d replies 402::session_unknown, %d from a node that did not "+
		"answer the session's handshake", st.Handshakes, st.UnknownSession, hops)
	if got := named(run.jar, "cometd2.test", demo.BrowserCookie); len(got) != 1 || !partitionedUnder(got[0], "https://shopc2.test") {
		t.Errorf("BAYEUX_BROWSER: %s, want one partitioned under https://shopc2.test", describe(got))
	}
}

// TestCometDFilterAffinity: with the filter and affinity, one handshake, connects keep cycling, every published
// message comes back through the subscription, and all of it on the node that answered the handshake. It runs under
// each Envoy profile: 1.33 is the strict WASI that Envoy 1.33 to 1.37 ship (the host's default), 94091cd the later
// cpp-host's.
func TestCometDFilterAffinity(t *testing.T) {
	for i, envoy := range []string{"1.33", "94091cd"} {
		t.Run("envoy="+envoy, func(t *testing.T) {
			chat, shop := "cometd3"+strconv.Itoa(i)+".test", "shopc3"+strconv.Itoa(i)+".test"
			run := runCometDScenario(t, chat, shop, siteOptions{Filter: affinityFilter, Envoy: envoy})
			checkKeptOnOneNode(t, run.state, run.replies)
			aff := named(run.jar, chat, affinityCookie)
			if len(aff) != 1 || !partitionedUnder(aff[0], "https://"+shop) {
				t.Errorf("affinity cookie: %s, want one partitioned under https://%s", describe(aff), shop)
			}
		})
	}
}

// checkKeptOnOneNode checks the affinity outcome: one handshake, a steady session, no 402, and every Bayeux reply
// from the handshake's node.
func checkKeptOnOneNode(t *testing.T, st cometdState, replies map[string][]bayeuxReply) {
	t.Helper()
	if st.Lost || st.Handshakes != 1 || len(st.Sessions) != 1 || !st.Sessions[0].Steady {
		t.Fatalf("session lost: %d handshakes, %d sessions, lost=%t, failures %+v", st.Handshakes, len(st.Sessions),
			st.Lost, st.Failures)
	}
	s := st.Sessions[0]
	if !slices.Equal(s.Nodes, []string{s.Node}) || st.UnknownSession != 0 {
		t.Errorf("session of %s: answered by %v, %d replies 402::session_unknown; want only %s", s.Node, s.Nodes,
			st.UnknownSession, s.Node)
	}
	if nodes := repliesOf(replies, func(bayeuxReply) bool { return true }); !slices.Equal(nodes, []string{s.Node}) {
		t.Errorf("nodes that sent Bayeux replies: %v, want only %s", nodes, s.Node)
	}
	t.Logf("affinity: 1 handshake on %s, %d connects, %d messages back", s.Node, s.Connects, s.RoundTrips)
}

// TestCometDPinnedNodeStops: the node the session is pinned to stops. The proxy sends the next connect to another
// node, which does not know the session (402); the filter re-pins the browser to that node, the client handshakes
// again there and carries on.
func TestCometDPinnedNodeStops(t *testing.T) {
	site := startCometDSite(t, "cometd4.test", siteOptions{Filter: affinityFilter})
	shop := "https://shopc4.test:" + startShop(t, site.url)
	tb := newTab(t)

	first := runCometD(t, tb, shop+cometdPage, settled)
	if first.Lost || len(first.Sessions) != 1 {
		t.Fatalf("first session lost: %d handshakes, failures %+v", first.Handshakes, first.Failures)
	}
	pinned := first.Sessions[0].Node
	site.node(t, pinned).stop()
	st := waitCometD(t, tb, func(s cometdState) bool { return s.Lost || len(s.steady()) > 1 })
	tb.close()
	replies := site.stop()
	if st.Lost || st.Handshakes != 2 || len(st.Sessions) != 2 {
		t.Fatalf("after %s stopped: %d handshakes, %d sessions, lost=%t, failures %+v", pinned, st.Handshakes,
			len(st.Sessions), st.Lost, st.Failures)
	}
	second := st.Sessions[1]
	if second.Node == pinned || !second.Steady || !slices.Equal(second.Nodes, []string{second.Node}) {
		t.Errorf("second session on %s answered by %v (steady %t), want one node other than %s", second.Node,
			second.Nodes, second.Steady, pinned)
	}
	handshakes := repliesOf(replies, func(r bayeuxReply) bool { return r.Channel == "/meta/handshake" && r.Successful })
	if want := []string{pinned, second.Node}; !slices.Equal(handshakes, slices.Sorted(slices.Values(want))) {
		t.Errorf("handshakes answered by %v, want %v", handshakes, want)
	}
	t.Logf("failover: %s stopped; re-handshake on %s after %d replies 402::session_unknown, then %d connects, %d messages back",
		pinned, second.Node, st.UnknownSession, second.Connects, second.RoundTrips)
}
