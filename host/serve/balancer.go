package serve

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// upstream is one endpoint of the cluster with its passive health state.
type upstream struct {
	url  *url.URL
	addr string // "host:port" as the filter sees it in upstream.address and the routing header names it

	downUntil atomic.Int64 // unix nanoseconds; 0 or past = healthy
	requests  atomic.Int64
	errors    atomic.Int64
}

// balancer picks upstreams: the one a routing header names when it is known and healthy, else round-robin over the
// healthy ones (Envoy's header-based stateful session in non-strict mode in front of a ROUND_ROBIN cluster).
type balancer struct {
	ups     []*upstream
	byAddr  map[string]*upstream
	next    atomic.Uint64
	downFor time.Duration
	now     func() time.Time
}

// upstreamAddr returns the "host:port" of an upstream URL, adding the scheme's default port.
func upstreamAddr(u *url.URL) (string, error) {
	switch u.Scheme {
	case "http", "https":
	default:
		return "", fmt.Errorf("upstream %q: scheme must be http or https", u.String())
	}
	host := u.Hostname()
	if host == "" {
		return "", fmt.Errorf("upstream %q: no host", u.String())
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port), nil
}

func newBalancer(urls []*url.URL, downFor time.Duration, now func() time.Time) (*balancer, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("no upstream")
	}
	b := &balancer{byAddr: map[string]*upstream{}, downFor: downFor, now: now}
	for _, u := range urls {
		addr, err := upstreamAddr(u)
		if err != nil {
			return nil, err
		}
		if _, dup := b.byAddr[addr]; dup {
			return nil, fmt.Errorf("upstream %q: listed twice", addr)
		}
		cp := *u
		cp.Path = strings.TrimSuffix(cp.Path, "/")
		up := &upstream{url: &cp, addr: addr}
		b.ups = append(b.ups, up)
		b.byAddr[addr] = up
	}
	return b, nil
}

func (b *balancer) healthy(u *upstream) bool {
	return b.now().UnixNano() >= u.downUntil.Load()
}

// markDown takes an upstream out of rotation for the configured time.
func (b *balancer) markDown(u *upstream) {
	u.downUntil.Store(b.now().Add(b.downFor).UnixNano())
}

// pick returns the upstream for a request. routed is the decoded routing header ("" when absent); except is an
// upstream already tried for this request. It returns nil when no healthy upstream is left.
func (b *balancer) pick(routed string, except *upstream) *upstream {
	if routed != "" {
		if u, ok := b.byAddr[routed]; ok && u != except && b.healthy(u) {
			return u
		}
	}
	n := uint64(len(b.ups))
	start := b.next.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		u := b.ups[(start+i)%n]
		if u != except && b.healthy(u) {
			return u
		}
	}
	return nil
}

// anyHealthy reports whether at least one upstream is in rotation.
func (b *balancer) anyHealthy() bool {
	for _, u := range b.ups {
		if b.healthy(u) {
			return true
		}
	}
	return false
}
