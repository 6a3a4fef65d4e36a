package affinity

import (
	"strings"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/rewrite"
)

const chromeUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func TestSetCookie(t *testing.T) {
	const v = "AbC-_9"
	tests := []struct {
		name      string
		extra     string // affinity members
		cookies   string // cookies section
		authority string
		ua        string
		want      string
	}{
		{name: "defaults", want: cookieName + "=" + v + "; Path=/; Secure; HttpOnly; SameSite=None; Partitioned"},
		{name: "max_age", extra: `,"max_age":"90m"`,
			want: cookieName + "=" + v + "; Path=/; Secure; HttpOnly; SameSite=None; Partitioned; Max-Age=5400"},
		{name: "max_age rounded up, never 0", extra: `,"max_age":"1500ms"`,
			want: cookieName + "=" + v + "; Path=/; Secure; HttpOnly; SameSite=None; Partitioned; Max-Age=2"},
		{name: "policy SameSite", cookies: `"same_site":"Lax"`,
			want: cookieName + "=" + v + "; Path=/; Secure; HttpOnly; SameSite=Lax; Partitioned"},
		{name: "policy without Partitioned keeps it", cookies: `"partitioned":false`,
			want: cookieName + "=" + v + "; Path=/; Secure; HttpOnly; SameSite=None; Partitioned"},
		{name: "domain auto never on __Host-", cookies: `"domain":"auto"`, authority: "chat.example.com",
			want: cookieName + "=" + v + "; Path=/; Secure; HttpOnly; SameSite=None; Partitioned"},
		{name: "domain auto on a plain name", extra: `,"cookie_name":"chips_affinity"`, cookies: `"domain":"auto"`,
			authority: "chat.example.com",
			want:      "chips_affinity=" + v + "; Path=/; Secure; HttpOnly; SameSite=None; Partitioned; Domain=example.com"},
		{name: "client mishandling SameSite=None",
			ua:   "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
			want: cookieName + "=" + v + "; Path=/; Secure; HttpOnly; Partitioned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"affinity":{"enabled":true,"keys":["` + keyA + `"]` + tt.extra + `},"cookies":{` + tt.cookies + `}}`
			cfg := parse(t, doc)
			authority, ua := tt.authority, tt.ua
			if authority == "" {
				authority = "chat.example.com"
			}
			if ua == "" {
				ua = chromeUA
			}
			req := rewrite.NewRequest(cfg, authority, "/", ua)
			got := SetCookie(&cfg.Affinity, v, &req)
			if !sameAttributes(got, tt.want) {
				t.Errorf("SetCookie =\n  %q\nwant (attribute order aside)\n  %q", got, tt.want)
			}
		})
	}
}

// sameAttributes compares two Set-Cookie values as sets of attributes after the name-value pair, since the cookie
// policy may place a replaced attribute where the original stood or at the end.
func sameAttributes(a, b string) bool {
	split := func(s string) (string, map[string]bool) {
		parts := strings.Split(s, ";")
		m := map[string]bool{}
		for _, p := range parts[1:] {
			m[strings.TrimSpace(p)] = true
		}
		return parts[0], m
	}
	pa, ma := split(a)
	pb, mb := split(b)
	if pa != pb || len(ma) != len(mb) || strings.Count(a, ";") != strings.Count(b, ";") {
		return false
	}
	for k := range ma {
		if !mb[k] {
			return false
		}
	}
	return true
}

func TestWithoutNamed(t *testing.T) {
	in := []string{"a=1", cookieName + "=upstream; Path=/", "b=2", " " + cookieName + " =again", "no pair", strings.ToLower(cookieName) + "=kept"}
	got, dropped := WithoutNamed(in, cookieName)
	want := []string{"a=1", "b=2", "no pair", strings.ToLower(cookieName) + "=kept"}
	if !dropped || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("WithoutNamed = %q, %t; want %q, true", got, dropped, want)
	}
	if in[1] != cookieName+"=upstream; Path=/" {
		t.Errorf("input modified: %q", in)
	}
	same, dropped := WithoutNamed(want, cookieName)
	if dropped || len(same) != len(want) || &same[0] != &want[0] {
		t.Errorf("nothing to drop: got %q, %t (want the input slice itself)", same, dropped)
	}
}

func TestPrivateCacheControl(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		changed bool
	}{
		{nil, "private", true},
		{[]string{""}, "private", true},
		{[]string{"max-age=60"}, "max-age=60, private", true},
		{[]string{"public, max-age=600"}, "max-age=600, private", true},
		{[]string{"Public,max-age=600, s-maxage=60"}, "max-age=600, s-maxage=60, private", true},
		{[]string{"no-cache"}, "no-cache, private", true},
		{[]string{`private="set-cookie", max-age=5`}, "max-age=5, private", true},
		{[]string{`no-cache="set-cookie, x-a", public`}, `no-cache="set-cookie, x-a", private`, true},
		{[]string{"max-age=60", "public"}, "max-age=60, private", true},
		{[]string{"private"}, "", false},
		{[]string{"max-age=0, PRIVATE"}, "", false},
		{[]string{"no-store"}, "", false},
		{[]string{"public", "no-store"}, "", false},
		{[]string{`ext="a, private", ,max-age=1`}, `ext="a, private", max-age=1, private`, true},
		{[]string{`max-age=1, a="\`}, `max-age=1, private`, true},
		{[]string{`max-age=1, a="\`}, `max-age=1, private`, true},
	}
	for _, tt := range tests {
		got, changed := PrivateCacheControl(tt.in)
		if got != tt.want || changed != tt.changed {
			t.Errorf("PrivateCacheControl(%q) = %q, %t; want %q, %t", tt.in, got, changed, tt.want, tt.changed)
		}
	}
}

func TestDirectives(t *testing.T) {
	tests := map[string][]string{
		"":                           nil,
		" , ,":                       nil,
		"a,b":                        {"a", "b"},
		` a = "x,y" , b`:             {`a = "x,y"`, "b"},
		`a="x\",y", b`:               {`a="x\",y"`, "b"},
		`a="unterminated, b`:         nil,
		`c, a="ends with backslash\`: {"c"},
	}
	for in, want := range tests {
		if got := directives(in); strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("directives(%q) = %q, want %q", in, got, want)
		}
	}
}

// Whatever the upstream sent, the result keeps shared caches out: applied again it changes nothing, it holds an
// unqualified private, and no public survives.
func FuzzPrivateCacheControl(f *testing.F) {
	for _, s := range []string{"", "public, max-age=60", `no-cache="set-cookie, x", public`, `private="a"`, `a="\"`, "no-store"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		out, changed := PrivateCacheControl([]string{v})
		if !changed {
			return
		}
		if again, changed := PrivateCacheControl([]string{out}); changed {
			t.Fatalf("%q -> %q -> %q: not stable", v, out, again)
		}
		for _, d := range directives(out) {
			if strings.EqualFold(strings.TrimSpace(d), "public") {
				t.Fatalf("%q -> %q: public kept", v, out)
			}
		}
	})
}
