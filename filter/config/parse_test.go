package config

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/cookie"
)

var (
	key1 = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	key2 = base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
)

func noEnv(string) (string, bool) { return "", false }

func TestParseEmptyMeansDefaults(t *testing.T) {
	for _, doc := range []string{"", "  \n", "{}"} {
		c, err := Parse([]byte(doc), noEnv)
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want defaults %+v", doc, c, Default())
		}
	}
	d := Default()
	if d.Cookies.SameSite != cookie.SameSiteNone || !d.Cookies.Partitioned || d.Cookies.HTTPOnly ||
		d.Cookies.Path != "" || d.Cookies.DomainAuto || d.DryRun || d.Affinity.Enabled {
		t.Errorf("defaults changed: %+v", d)
	}
	if got := d.Policy(); got != (cookie.Policy{SameSite: cookie.SameSiteNone, Partitioned: true}) {
		t.Errorf("default policy = %+v", got)
	}
}

// TestParseEveryKey sets every documented key to a non-default value and checks each one lands.
func TestParseEveryKey(t *testing.T) {
	doc := `{
	  "cookies": {"include": ["BAYEUX_*", "JSESSIONID"], "exclude": ["_ga*"], "same_site": "lax",
	              "partitioned": false, "http_only": true, "path": "/", "domain": "auto"},
	  "scope": {"hosts": ["Chat.Example.com", "*.example.org"], "path_prefixes": ["/genesys/"]},
	  "dry_run": true,
	  "affinity": {"enabled": true, "cookie_name": "gms_node", "keys": ["` + key1 + `", "` + key2 + `"],
	               "routing_header": "X-GMS-Upstream", "max_idle": "10m", "max_life": "2h",
	               "refresh_interval": "30s", "max_age": "1h", "indirect": false, "nocache": false}
	}`
	c, err := Parse([]byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := Cookies{Include: []string{"BAYEUX_*", "JSESSIONID"}, Exclude: []string{"_ga*"},
		SameSite: cookie.SameSiteLax, Partitioned: false, HTTPOnly: true, Path: "/", DomainAuto: true}
	if !reflect.DeepEqual(c.Cookies, want) {
		t.Errorf("cookies = %+v, want %+v", c.Cookies, want)
	}
	if !reflect.DeepEqual(c.Scope, Scope{Hosts: []string{"chat.example.com", "*.example.org"}, PathPrefixes: []string{"/genesys/"}}) {
		t.Errorf("scope = %+v", c.Scope)
	}
	if !c.DryRun {
		t.Error("dry_run not set")
	}
	a := c.Affinity
	if !a.Enabled || a.CookieName != "gms_node" || a.RoutingHeader != "x-gms-upstream" || a.MaxIdle != 10*time.Minute ||
		a.MaxLife != 2*time.Hour || a.RefreshInterval != 30*time.Second || a.MaxAge != time.Hour || a.Indirect || a.NoCache {
		t.Errorf("affinity = %+v", a)
	}
	if a.Sealer == nil {
		t.Fatal("no sealer built")
	}
	if got := c.Policy(); got != (cookie.Policy{SameSite: cookie.SameSiteLax, HTTPOnly: true, Path: "/"}) {
		t.Errorf("policy = %+v", got)
	}
}

func TestParseKeysFromEnvironment(t *testing.T) {
	env := func(name string) (string, bool) {
		if name == "CHIPS_AFFINITY_KEYS" {
			return key2 + " , " + key1, true
		}
		return "", false
	}
	c, err := Parse([]byte(`{"affinity":{"enabled":true,"keys_env":"CHIPS_AFFINITY_KEYS"}}`), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Affinity.Sealer == nil || c.Affinity.KeysEnv != "CHIPS_AFFINITY_KEYS" {
		t.Fatalf("affinity = %+v", c.Affinity)
	}
	// Disabled affinity needs no keys, even when keys_env names a variable that is not set.
	if _, err := Parse([]byte(`{"affinity":{"keys_env":"NOPE"}}`), env); err != nil {
		t.Errorf("disabled affinity with unset keys_env: %v", err)
	}
}

func TestSelectedAndScope(t *testing.T) {
	c, err := Parse([]byte(`{"cookies":{"include":["BAYEUX_*","JSESSIONID"],"exclude":["BAYEUX_DEBUG"]},
		"scope":{"hosts":["chat.example.com","*.gms.example.com"],"path_prefixes":["/genesys/","/cometd"]}}`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"BAYEUX_BROWSER": true, "JSESSIONID": true, "BAYEUX_DEBUG": false, "jsessionid": false, "other": false,
	} {
		if got := c.Selected(name); got != want {
			t.Errorf("Selected(%q) = %v, want %v", name, got, want)
		}
	}
	cases := []struct {
		host, path string
		want       bool
	}{
		{"chat.example.com", "/genesys/2/chat", true},
		{"CHAT.example.com.:443", "/cometd/connect", true},
		{"a.gms.example.com:8443", "/genesys/", true},
		{"example.com", "/genesys/", false},
		{"chat.example.com", "/other", false},
		{"[::1]:443", "/genesys/", false},
	}
	for _, tc := range cases {
		if got := c.InScope(tc.host, tc.path); got != tc.want {
			t.Errorf("InScope(%q, %q) = %v, want %v", tc.host, tc.path, got, tc.want)
		}
	}
	if !Default().InScope("anything:1", "/x") || !Default().Selected("any") {
		t.Error("defaults must cover every request and cookie")
	}
}

// TestParseRejects holds the invalid documents: each must fail with an error naming the field.
func TestParseRejects(t *testing.T) {
	cases := []struct{ doc, path, msg string }{
		{`[]`, "", "want an object"},
		{`{"cookies": `, "", "not valid JSON"},
		{`{"cookie": {}}`, "cookie", "unknown key"},
		{`{"cookies": {"samesite": "None"}}`, "cookies.samesite", "unknown key"},
		{`{"cookies": {"same_site": "none!"}}`, "cookies.same_site", `want "None", "Lax" or "Strict", got "none!"`},
		{`{"cookies": {"same_site": 1}}`, "cookies.same_site", "want a string, got a number"},
		{`{"cookies": {"partitioned": "yes"}}`, "cookies.partitioned", "want true or false"},
		{`{"cookies": {"http_only": null}}`, "cookies.http_only", "want true or false, got null"},
		{`{"cookies": {"path": "api"}}`, "cookies.path", "absolute path"},
		{`{"cookies": {"path": "/a;b"}}`, "cookies.path", "absolute path"},
		{`{"cookies": {"domain": "example.com"}}`, "cookies.domain", `or "auto"`},
		{`{"cookies": {"include": "BAYEUX_BROWSER"}}`, "cookies.include", "want an array of strings"},
		{`{"cookies": {"include": []}}`, "cookies.include", "selects no cookie"},
		{`{"cookies": {"include": ["a", 3]}}`, "cookies.include[1]", "want a string"},
		{`{"cookies": {"exclude": ["[a-"]}}`, "cookies.exclude[0]", "bad pattern"},
		{`{"cookies": {"exclude": [""]}}`, "cookies.exclude[0]", "empty pattern"},
		{`{"cookies": []}`, "cookies", "want an object, got an array"},
		{`{"scope": {"paths": []}}`, "scope.paths", "unknown key"},
		{`{"scope": {"path_prefixes": ["genesys"]}}`, "scope.path_prefixes[0]", "starting with '/'"},
		{`{"scope": {"hosts": ["[bad"]}}`, "scope.hosts[0]", "bad pattern"},
		{`{"dry_run": "true"}`, "dry_run", "want true or false"},
		{`{"dry_run": true, "dry_run": false}`, "dry_run", "given twice"},
		{`{"affinity": {"enabled": true}}`, "affinity.keys", "no keys"},
		{`{"affinity": {"enabled": true, "keys": []}}`, "affinity.keys", "no keys"},
		{`{"affinity": {"enabled": true, "keys": ["not base64!"]}}`, "affinity.keys", "key 0"},
		{`{"affinity": {"enabled": true, "keys": ["` + base64.StdEncoding.EncodeToString([]byte("short")) + `"]}}`, "affinity.keys", "32"},
		{`{"affinity": {"keys": ["` + key1 + `"], "keys_env": "K"}}`, "affinity.keys", "not both"},
		{`{"affinity": {"enabled": true, "keys_env": "UNSET_VAR"}}`, "affinity.keys_env", "UNSET_VAR is not set"},
		{`{"affinity": {"cookie_name": "bad name"}}`, "affinity.cookie_name", "not a valid name"},
		{`{"affinity": {"cookie_name": ""}}`, "affinity.cookie_name", "must not be empty"},
		{`{"affinity": {"routing_header": "x:y"}}`, "affinity.routing_header", "not a valid name"},
		{`{"affinity": {"max_idle": "30 minutes"}}`, "affinity.max_idle", "want a duration"},
		{`{"affinity": {"max_life": 3600}}`, "affinity.max_life", "want a string"},
		{`{"affinity": {"max_age": "-1h"}}`, "affinity.max_age", "must not be negative"},
		{`{"affinity": {"enabled": true, "keys": ["` + key1 + `"], "max_idle": "1m", "refresh_interval": "5m"}}`,
			"affinity.refresh_interval", "shorter than max_idle"},
		{`{"affinity": {"enabled": "on"}}`, "affinity.enabled", "want true or false"},
		{`{"affinity": {"indirect": 1}}`, "affinity.indirect", "want true or false"},
		{`{"affinity": {"nocache": {}}}`, "affinity.nocache", "want true or false, got an object"},
	}
	if len(cases) < 20 {
		t.Fatalf("only %d invalid cases", len(cases))
	}
	for _, tc := range cases {
		c, err := Parse([]byte(tc.doc), noEnv)
		if err == nil {
			t.Errorf("Parse(%s) = %+v, want an error", tc.doc, c)
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("Parse(%s): error %T is not *config.Error", tc.doc, err)
			continue
		}
		if ce.Path != tc.path || !strings.Contains(ce.Msg, tc.msg) {
			t.Errorf("Parse(%s)\n got %v\nwant path %q containing %q", tc.doc, err, tc.path, tc.msg)
		}
		if !strings.HasPrefix(err.Error(), "config: "+tc.path) {
			t.Errorf("error %q does not start with the component and path", err)
		}
	}
}

// TestExampleConfigs keeps testdata/config/ honest: every *.json there parses; every *.invalid.json fails.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../testdata/config/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs found: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(data, func(string) (string, bool) { return key1, true })
		if strings.HasSuffix(f, ".invalid.json") {
			if err == nil {
				t.Errorf("%s: parsed, want an error", f)
			}
		} else if err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"cookies":{"include":["a*"],"same_site":"Strict"}}`))
	f.Add([]byte(`{"affinity":{"enabled":true,"keys":["` + key1 + `"]}}`))
	f.Add([]byte(`{"scope":{"hosts":["*.x"],"path_prefixes":["/"]},"dry_run":false}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, noEnv)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *config.Error: %v", err, err)
			}
			return
		}
		// Whatever parses must be usable without panicking.
		c.Selected("BAYEUX_BROWSER")
		c.InScope("chat.example.com:443", "/cometd")
		_ = c.Policy()
	})
}
