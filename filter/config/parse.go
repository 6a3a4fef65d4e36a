package config

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/cookie"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/seal"
)

// Error is a configuration error tied to the JSON path of the field at fault.
type Error struct {
	Path string // dotted JSON path, e.g. "cookies.same_site"; empty for the document itself
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "config: " + e.Msg
	}
	return "config: " + e.Path + ": " + e.Msg
}

func errorf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads a configuration document. Empty input (or only white space) means Default(). env looks up the
// environment variable named by affinity.keys_env; nil means os.LookupEnv (inside Envoy that is the VM's
// environment, set by vm_config.environment_variables or Istio's vmConfig.env).
func Parse(data []byte, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	c := Default()
	if len(strings.TrimSpace(string(data))) == 0 {
		return c, nil
	}
	if !gjson.ValidBytes(data) {
		return nil, errorf("", "not valid JSON")
	}
	root := gjson.ParseBytes(data)
	var keys keySource
	err := object(root, "", map[string]func(gjson.Result, string) error{
		"cookies": func(v gjson.Result, p string) error { return parseCookies(v, p, &c.Cookies) },
		"scope":   func(v gjson.Result, p string) error { return parseScope(v, p, &c.Scope) },
		"dry_run": func(v gjson.Result, p string) error { return boolean(v, p, &c.DryRun) },
		"affinity": func(v gjson.Result, p string) error {
			return parseAffinity(v, p, &c.Affinity, &keys)
		},
	})
	if err != nil {
		return nil, err
	}
	if err := finishAffinity(&c.Affinity, keys, env); err != nil {
		return nil, err
	}
	c.selectAll = len(c.Cookies.Exclude) == 0 && slices.Contains(c.Cookies.Include, "*")
	return c, nil
}

// object walks a JSON object, calling the handler of each known key and refusing unknown and repeated keys
// (gjson would silently use the first of two equal keys).
func object(v gjson.Result, p string, fields map[string]func(gjson.Result, string) error) error {
	if !v.IsObject() {
		return errorf(p, "want an object, got %s", describe(v))
	}
	seen := make(map[string]bool, len(fields))
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		name := k.String()
		fp := join(p, name)
		handle, ok := fields[name]
		switch {
		case !ok:
			err = errorf(fp, "unknown key (known: %s)", known(fields))
		case seen[name]:
			err = errorf(fp, "key given twice")
		default:
			seen[name] = true
			err = handle(val, fp)
		}
		return err == nil
	})
	return err
}

func parseCookies(v gjson.Result, p string, c *Cookies) error {
	return object(v, p, map[string]func(gjson.Result, string) error{
		"include": func(v gjson.Result, p string) error {
			if err := patterns(v, p, &c.Include); err != nil {
				return err
			}
			if len(c.Include) == 0 {
				return errorf(p, `an empty list selects no cookie; omit the key (or use ["*"]) for all cookies`)
			}
			return nil
		},
		"exclude": func(v gjson.Result, p string) error { return patterns(v, p, &c.Exclude) },
		"same_site": func(v gjson.Result, p string) error {
			var s string
			if err := str(v, p, &s); err != nil {
				return err
			}
			ss, err := cookie.ParseSameSite(s)
			if err != nil {
				return errorf(p, `want "None", "Lax" or "Strict", got %q`, s)
			}
			c.SameSite = ss
			return nil
		},
		"partitioned": func(v gjson.Result, p string) error { return boolean(v, p, &c.Partitioned) },
		"http_only":   func(v gjson.Result, p string) error { return boolean(v, p, &c.HTTPOnly) },
		"path": func(v gjson.Result, p string) error {
			if err := str(v, p, &c.Path); err != nil {
				return err
			}
			if c.Path != "" && (!strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, ";\r\n\x00")) {
				return errorf(p, "want an absolute path such as \"/\" without ';' or control characters, got %q", c.Path)
			}
			return nil
		},
		"domain": func(v gjson.Result, p string) error {
			var s string
			if err := str(v, p, &s); err != nil {
				return err
			}
			switch s {
			case "":
			case "auto":
				c.DomainAuto = true
			default:
				return errorf(p, `want "" (leave Domain alone) or "auto", got %q`, s)
			}
			return nil
		},
	})
}

func parseScope(v gjson.Result, p string, s *Scope) error {
	return object(v, p, map[string]func(gjson.Result, string) error{
		"hosts": func(v gjson.Result, p string) error {
			if err := patterns(v, p, &s.Hosts); err != nil {
				return err
			}
			for i, h := range s.Hosts {
				s.Hosts[i] = strings.ToLower(h)
			}
			return nil
		},
		"path_prefixes": func(v gjson.Result, p string) error {
			if err := strs(v, p, &s.PathPrefixes); err != nil {
				return err
			}
			for i, pre := range s.PathPrefixes {
				if !strings.HasPrefix(pre, "/") {
					return errorf(fmt.Sprintf("%s[%d]", p, i), "want a path prefix starting with '/', got %q", pre)
				}
			}
			return nil
		},
	})
}

// keySource remembers where affinity keys come from until the whole section is read.
type keySource struct {
	inline    []string
	inlineSet bool
}

func parseAffinity(v gjson.Result, p string, a *Affinity, keys *keySource) error {
	return object(v, p, map[string]func(gjson.Result, string) error{
		"enabled":     func(v gjson.Result, p string) error { return boolean(v, p, &a.Enabled) },
		"cookie_name": func(v gjson.Result, p string) error { return token(v, p, &a.CookieName) },
		"keys": func(v gjson.Result, p string) error {
			keys.inlineSet = true
			return strs(v, p, &keys.inline)
		},
		"keys_env": func(v gjson.Result, p string) error { return str(v, p, &a.KeysEnv) },
		"routing_header": func(v gjson.Result, p string) error {
			if err := token(v, p, &a.RoutingHeader); err != nil {
				return err
			}
			a.RoutingHeader = strings.ToLower(a.RoutingHeader)
			return nil
		},
		"max_idle":         func(v gjson.Result, p string) error { return duration(v, p, &a.MaxIdle) },
		"max_life":         func(v gjson.Result, p string) error { return duration(v, p, &a.MaxLife) },
		"refresh_interval": func(v gjson.Result, p string) error { return duration(v, p, &a.RefreshInterval) },
		"max_age":          func(v gjson.Result, p string) error { return duration(v, p, &a.MaxAge) },
		"indirect":         func(v gjson.Result, p string) error { return boolean(v, p, &a.Indirect) },
		"nocache":          func(v gjson.Result, p string) error { return boolean(v, p, &a.NoCache) },
	})
}

// finishAffinity checks what only makes sense across the section's keys and builds the sealer.
func finishAffinity(a *Affinity, keys keySource, env func(string) (string, bool)) error {
	if keys.inlineSet && a.KeysEnv != "" {
		return errorf("affinity.keys", "give either keys or keys_env, not both")
	}
	if !a.Enabled {
		return nil
	}
	if a.MaxIdle > 0 && a.RefreshInterval >= a.MaxIdle {
		return errorf("affinity.refresh_interval", "must be shorter than max_idle (%s), got %s", a.MaxIdle, a.RefreshInterval)
	}
	list, where := keys.inline, "affinity.keys"
	if a.KeysEnv != "" {
		where = "affinity.keys_env"
		val, ok := env(a.KeysEnv)
		if !ok || strings.TrimSpace(val) == "" {
			return errorf(where, "environment variable %s is not set or empty (set it through vm_config.environment_variables or Istio vmConfig.env)", a.KeysEnv)
		}
		list = strings.Split(val, ",")
		for i := range list {
			list[i] = strings.TrimSpace(list[i])
		}
	}
	if len(list) == 0 {
		return errorf("affinity.keys", "affinity is enabled but no keys are configured (give keys or keys_env)")
	}
	raw, err := seal.ParseKeys(list)
	if err != nil {
		return errorf(where, "%v", err)
	}
	s, err := seal.NewSealer(raw)
	if err != nil {
		return errorf(where, "%v", err)
	}
	a.Sealer = s
	return nil
}

func boolean(v gjson.Result, p string, dst *bool) error {
	if v.Type != gjson.True && v.Type != gjson.False {
		return errorf(p, "want true or false, got %s", describe(v))
	}
	*dst = v.Bool()
	return nil
}

func str(v gjson.Result, p string, dst *string) error {
	if v.Type != gjson.String {
		return errorf(p, "want a string, got %s", describe(v))
	}
	*dst = v.String()
	return nil
}

func strs(v gjson.Result, p string, dst *[]string) error {
	if !v.IsArray() {
		return errorf(p, "want an array of strings, got %s", describe(v))
	}
	var out []string // an empty array reads as nil, like an absent key
	var err error
	v.ForEach(func(k, item gjson.Result) bool {
		var s string
		err = str(item, fmt.Sprintf("%s[%d]", p, len(out)), &s)
		out = append(out, s)
		return err == nil
	})
	if err != nil {
		return err
	}
	*dst = out
	return nil
}

// patterns reads a list of non-empty path.Match patterns.
func patterns(v gjson.Result, p string, dst *[]string) error {
	if err := strs(v, p, dst); err != nil {
		return err
	}
	for i, pat := range *dst {
		ip := fmt.Sprintf("%s[%d]", p, i)
		if pat == "" {
			return errorf(ip, "empty pattern")
		}
		if _, err := path.Match(pat, ""); err != nil {
			return errorf(ip, "bad pattern %q: %v", pat, err)
		}
	}
	return nil
}

// token reads an RFC 9110 token (cookie and header names must be one).
func token(v gjson.Result, p string, dst *string) error {
	var s string
	if err := str(v, p, &s); err != nil {
		return err
	}
	if s == "" {
		return errorf(p, "must not be empty")
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return errorf(p, "%q is not a valid name: character %q at %d is not allowed", s, s[i], i)
		}
	}
	*dst = s
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// duration reads a Go duration string such as "30m" or "1h30m"; negative values are refused.
func duration(v gjson.Result, p string, dst *time.Duration) error {
	var s string
	if err := str(v, p, &s); err != nil {
		return err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return errorf(p, `want a duration such as "30m" or "24h", got %q`, s)
	}
	if d < 0 {
		return errorf(p, "must not be negative, got %q", s)
	}
	*dst = d
	return nil
}

func describe(v gjson.Result) string {
	switch v.Type {
	case gjson.Null:
		return "null"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Number:
		return "a number (" + v.Raw + ")"
	case gjson.String:
		return fmt.Sprintf("a string (%q)", v.String())
	}
	if v.IsArray() {
		return "an array"
	}
	return "an object"
}

func join(p, key string) string {
	if p == "" {
		return key
	}
	return p + "." + key
}

func known(fields map[string]func(gjson.Result, string) error) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names) // a stable message
	return strings.Join(names, ", ")
}
