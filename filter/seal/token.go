// Package seal holds the token the filter's session-affinity cookie carries, sealed with AES-256-GCM so that a
// client can neither read nor forge the upstream it is pinned to: its format, its keys, and its validity limits.
// What the filter does with a token is filter/affinity's.
//
// The package imports no proxy-wasm SDK, so it is tested and fuzzed natively and compiled unchanged into the
// filter (GOOS=wasip1 GOARCH=wasm).
package seal

import (
	"errors"
	"time"
)

// Reasons a cookie value is not honoured. Open and Validate return these values themselves, never wrapped, so
// the filter can count each reason with a plain comparison on the request path.
var (
	// ErrMalformed: the value is not a token of this format (bad base64, wrong length, unknown version).
	ErrMalformed = errors.New("affinity: malformed token")
	// ErrTampered: no configured key authenticates the token (forged, altered, bound to another cookie name, or
	// sealed with a key that has since been removed).
	ErrTampered = errors.New("affinity: token not authenticated by any key")
	// ErrExpiredIdle: the token was last seen longer ago than the idle limit (HAProxy's maxidle).
	ErrExpiredIdle = errors.New("affinity: token idle for too long")
	// ErrExpiredLife: the token was issued longer ago than the life limit (HAProxy's maxlife).
	ErrExpiredLife = errors.New("affinity: token too old")
	// ErrFromFuture: the token claims to be issued or seen later than now plus ClockSkew.
	ErrFromFuture = errors.New("affinity: token from the future")
)

// ClockSkew is how far in the future a token's times may lie and still be accepted. Tokens are sealed by every
// proxy replica holding the key; their clocks agree only approximately, and a client may bounce between them.
const ClockSkew = time.Minute

// Token is what the affinity cookie carries. Times are kept to the second: that is all the idle and life limits
// need, and it keeps the cookie short.
type Token struct {
	Upstream string    // "ip:port" of the upstream host the client is pinned to, as Envoy's upstream.address gives it
	Issued   time.Time // when the client was first pinned to Upstream; bounds the token's life
	LastSeen time.Time // when the token was last re-issued; bounds its idle time
}

// Validate reports whether the token may be honoured at now. A limit of 0 means no limit. An age exactly equal
// to a limit is still valid. A token both too old and idle too long reports ErrExpiredLife, the limit no
// activity can extend.
func (t Token) Validate(now time.Time, maxIdle, maxLife time.Duration) error {
	horizon := now.Add(ClockSkew)
	if t.Issued.After(horizon) || t.LastSeen.After(horizon) {
		return ErrFromFuture
	}
	if maxLife > 0 && now.Sub(t.Issued) > maxLife {
		return ErrExpiredLife
	}
	if maxIdle > 0 && now.Sub(t.LastSeen) > maxIdle {
		return ErrExpiredIdle
	}
	return nil
}

// NeedsRefresh reports whether the cookie should be re-issued at now to move LastSeen forward: once interval
// has passed since LastSeen. Refreshing on every response would cost a Set-Cookie (and a seal) each time;
// refreshing never would let an active client hit the idle limit. An interval of 0 refreshes every time, the
// only choice that still keeps an idle limit meaningful.
func (t Token) NeedsRefresh(now time.Time, interval time.Duration) bool {
	return interval <= 0 || now.Sub(t.LastSeen) >= interval
}
