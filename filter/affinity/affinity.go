// Package affinity decides, for one stream, what the filter's session-affinity cookie does. On the request: whether
// the client's token is honoured, and so which routing header Envoy's header-based stateful session receives, and
// what the upstream sees of the Cookie header. On the response: whether a cookie is issued, re-pinned or refreshed,
// what its Set-Cookie line is, and whether Cache-Control must become private.
//
// The package imports no proxy-wasm SDK and takes the clock as an argument, so every decision is tested natively
// and the filter's glue only moves headers and properties in and out. Sealing and opening tokens is filter/seal's
// job; this package only calls it. It also holds the codec of the routing header that Envoy's header-based stateful
// session reads (routing.go), which wasmhost serve shares.
//
// It must not import net/http: that package alone grows the filter by about 1.8 MB and makes it import
// wasi_snapshot_preview1.path_filestat_get, which Envoy 1.33 does not provide, so the module would fail to load.
// The Cookie request header is therefore split here (see cookies.go), and tested against net/http's parser.
package affinity

import (
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/seal"
)

// Verdict is what a request's affinity cookie amounts to. Each value other than Absent maps to one metric.
type Verdict uint8

// The verdicts.
const (
	// Absent: the request carries no affinity cookie.
	Absent Verdict = iota
	// Honoured: a token authenticated and within its limits; the request is routed to its upstream.
	Honoured
	// RejectedMalformed: the value is not a token (seal.ErrMalformed).
	RejectedMalformed
	// RejectedTampered: no configured key authenticates it (seal.ErrTampered).
	RejectedTampered
	// RejectedExpiredIdle: unused for longer than max_idle (seal.ErrExpiredIdle).
	RejectedExpiredIdle
	// RejectedExpiredLife: issued longer ago than max_life (seal.ErrExpiredLife).
	RejectedExpiredLife
	// RejectedFromFuture: authentic, but its times lie ahead of the proxy's clock by more than seal.ClockSkew
	// (seal.ErrFromFuture). Only a key holder can produce such a token, so it points at clocks that disagree
	// between proxy replicas rather than at a forgery, and is counted apart from RejectedTampered so that alerts on
	// tampering stay meaningful.
	RejectedFromFuture
)

// String returns the verdict's metric suffix: "absent", "honoured", "malformed", "tampered", "expired_idle",
// "expired_life" or "from_future".
func (v Verdict) String() string {
	switch v {
	case Absent:
		return "absent"
	case Honoured:
		return "honoured"
	case RejectedMalformed:
		return "malformed"
	case RejectedTampered:
		return "tampered"
	case RejectedExpiredIdle:
		return "expired_idle"
	case RejectedExpiredLife:
		return "expired_life"
	case RejectedFromFuture:
		return "from_future"
	}
	return "unknown"
}

// Rejected reports whether the request carried an affinity cookie that was not honoured.
func (v Verdict) Rejected() bool { return v >= RejectedMalformed }

// verdictOf maps the errors of seal.Sealer.Open and seal.Token.Validate, which that package returns
// unwrapped, to verdicts.
func verdictOf(err error) Verdict {
	switch err {
	case nil:
		return Honoured
	case seal.ErrTampered:
		return RejectedTampered
	case seal.ErrExpiredIdle:
		return RejectedExpiredIdle
	case seal.ErrExpiredLife:
		return RejectedExpiredLife
	case seal.ErrFromFuture:
		return RejectedFromFuture
	}
	return RejectedMalformed
}

// maxTokensTried bounds the tokens opened per request. A client may legitimately send the cookie name twice (an old
// cookie with a Domain next to a new host-only one), but every candidate whose key id matches costs an AES-GCM
// authentication, and the key id is visible in any token the client was issued: without a bound one request
// could force hundreds of them.
const maxTokensTried = 4

// Request is the request side's outcome, kept by the stream for its response.
type Request struct {
	Verdict Verdict
	// Token is the honoured token; zero unless Verdict is Honoured.
	Token seal.Token
	// Route is the routing-header value pinning the request to Token.Upstream; "" unless Verdict is Honoured.
	Route string
	// StripCookies is true when Indirect is on and a Cookie header carried the affinity cookie. Cookies then holds
	// the request's Cookie header values without it, in order, with headers left empty dropped.
	StripCookies bool
	Cookies      []string
}

// ReadRequest examines the request's Cookie header values (every "cookie" header, in order: HTTP/2 clients may
// send one per cookie) at now. The first affinity cookie that opens and validates is honoured; when none does, the
// verdict is the first one's reason.
func ReadRequest(a *config.Affinity, cookieHeaders []string, now time.Time) Request {
	var r Request
	tried := 0
	for _, h := range cookieHeaders {
		for rest := h; rest != ""; {
			var name, value string
			var ok bool
			name, value, rest, ok = nextPair(rest)
			if !ok || name != a.CookieName || r.Verdict == Honoured || tried == maxTokensTried {
				continue
			}
			tried++
			tok, err := a.Sealer.Open(value, a.CookieName)
			if err == nil {
				err = tok.Validate(now, a.MaxIdle, a.MaxLife)
			}
			v := verdictOf(err)
			if v == Honoured {
				r.Verdict, r.Token = Honoured, tok
			} else if r.Verdict == Absent {
				r.Verdict = v
			}
		}
	}
	if r.Verdict == Honoured {
		r.Route = EncodeRoutingValue(r.Token.Upstream)
	}
	if a.Indirect && r.Verdict != Absent {
		r.Cookies, r.StripCookies = withoutCookie(cookieHeaders, a.CookieName)
	}
	return r
}

// Action is what a response does with the affinity cookie. Each value other than Keep maps to one metric.
type Action uint8

// The actions.
const (
	// Keep: no cookie is emitted (the client's token stays valid as it is, or there is no upstream to pin to).
	Keep Action = iota
	// Issue: a new pin for a client that had no valid token.
	Issue
	// Repin: the client's valid token names another upstream than the one that served it (failover).
	Repin
	// Refresh: same upstream, last-seen time moved forward.
	Refresh
)

// String returns "keep", "issued", "repinned" or "refreshed".
func (a Action) String() string {
	switch a {
	case Keep:
		return "keep"
	case Issue:
		return "issued"
	case Repin:
		return "repinned"
	case Refresh:
		return "refreshed"
	}
	return "unknown"
}

// Decide returns what the response does, given the address of the upstream that served it (the property
// upstream.address; "" when no upstream did, as for a local reply), and the token to seal when it emits one.
//
// A re-pinned token starts a new life (Issued = now): it pins to a different host, and it is sealed with the
// current key, so the rotation rule "drop an old key once max_life has passed" still holds. A refresh keeps the
// issue time, which is what bounds the life of a pin however active the client is.
func Decide(a *config.Affinity, req *Request, upstream string, now time.Time) (Action, seal.Token) {
	if upstream == "" {
		return Keep, seal.Token{}
	}
	fresh := seal.Token{Upstream: upstream, Issued: now, LastSeen: now}
	switch {
	case req.Verdict != Honoured:
		return Issue, fresh
	case req.Token.Upstream != upstream:
		return Repin, fresh
	case req.Token.NeedsRefresh(now, a.RefreshInterval):
		return Refresh, seal.Token{Upstream: upstream, Issued: req.Token.Issued, LastSeen: now}
	}
	return Keep, seal.Token{}
}
