// Package config parses the filter's JSON configuration — Envoy's `configuration` string or Istio's
// `pluginConfig` — once, at plugin start, into an immutable Config.
//
// An empty document means the documented defaults. Unknown keys, duplicate keys, wrong types and bad values are
// errors that name the JSON path of the offending field, so that a typo in a manifest makes the plugin refuse to
// start (Envoy then rejects the configuration) instead of silently doing nothing.
package config

import (
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/cookie"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/seal"
)

// Config is the parsed, validated filter configuration. It is never modified after Parse returns, so one value is
// shared by every stream of a plugin.
type Config struct {
	Cookies  Cookies
	Scope    Scope
	DryRun   bool
	Affinity Affinity

	// selectAll caches that the selection is every cookie (the default), so that the per-cookie check costs
	// nothing: inside the module, path.Match on each cookie is measurable.
	selectAll bool
}

// Cookies says which response cookies are rewritten and how.
type Cookies struct {
	// Include and Exclude are cookie-name patterns in path.Match syntax ("*", "?", "[a-z]"); exclude wins.
	Include []string
	Exclude []string
	// SameSite replaces whatever SameSite the upstream sent.
	SameSite cookie.SameSite
	// Partitioned adds the CHIPS attribute.
	Partitioned bool
	// HTTPOnly adds HttpOnly to cookies that lack it.
	HTTPOnly bool
	// Path is added to cookies that carry no Path; empty leaves them alone.
	Path string
	// DomainAuto sets Domain to the registrable domain of the request's host.
	DomainAuto bool
}

// Scope limits the filter to some requests; empty lists mean every request.
type Scope struct {
	// Hosts are path.Match patterns over the request host without its port, lowercased.
	Hosts []string
	// PathPrefixes are prefixes of the request path.
	PathPrefixes []string
}

// Affinity configures the sealed session-affinity cookie.
type Affinity struct {
	Enabled bool
	// CookieName is the affinity cookie's name.
	CookieName string
	// KeysEnv, when set, names the environment variable the keys were read from (shown in logs, never the keys).
	KeysEnv string
	// Sealer seals with the first configured key and opens with all of them; nil when affinity is off.
	Sealer *seal.Sealer
	// RoutingHeader is the request header Envoy's header-based stateful session reads (lowercase).
	RoutingHeader string
	// MaxIdle and MaxLife bound a token's age since last use and since issue; zero means no bound.
	MaxIdle time.Duration
	MaxLife time.Duration
	// RefreshInterval is how stale the last-seen time may get before the cookie is re-issued to refresh it.
	RefreshInterval time.Duration
	// MaxAge is the cookie's Max-Age; zero makes it a session cookie.
	MaxAge time.Duration
	// Indirect strips the affinity cookie from requests before they reach the upstream.
	Indirect bool
	// NoCache adds "Cache-Control: private" to cacheable responses that carry a freshly issued cookie.
	NoCache bool
}

// Defaults of the documented keys.
const (
	DefaultAffinityCookieName = "__Host-chips_affinity"
	DefaultRoutingHeader      = "x-chips-upstream"
	DefaultMaxIdle            = 30 * time.Minute
	DefaultMaxLife            = 24 * time.Hour
	DefaultRefreshInterval    = time.Minute
)

// Default returns the configuration an empty document stands for: every cookie gets SameSite=None; Secure;
// Partitioned and nothing else changes.
func Default() *Config {
	return &Config{
		selectAll: true,
		Cookies: Cookies{
			Include:     []string{"*"},
			SameSite:    cookie.SameSiteNone,
			Partitioned: true,
		},
		Affinity: Affinity{
			CookieName:      DefaultAffinityCookieName,
			RoutingHeader:   DefaultRoutingHeader,
			MaxIdle:         DefaultMaxIdle,
			MaxLife:         DefaultMaxLife,
			RefreshInterval: DefaultRefreshInterval,
			Indirect:        true,
			NoCache:         true,
		},
	}
}

// Policy returns the request-independent part of the rewrite policy. The glue fills in Domain per request when
// DomainAuto is on.
func (c *Config) Policy() cookie.Policy {
	return cookie.Policy{
		SameSite:    c.Cookies.SameSite,
		Partitioned: c.Cookies.Partitioned,
		HTTPOnly:    c.Cookies.HTTPOnly,
		Path:        c.Cookies.Path,
	}
}
