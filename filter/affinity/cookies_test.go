package affinity

import (
	"net/http"
	"strings"
	"testing"
)

func TestNextPair(t *testing.T) {
	type pair struct{ name, value string }
	tests := map[string][]pair{
		"":                      nil,
		"a=1":                   {{"a", "1"}},
		"a=1; b=2":              {{"a", "1"}, {"b", "2"}},
		" a = 1 ;\tb=2\t;;":     {{"a", "1"}, {"b", "2"}},
		"novalue; =x; c=":       {{"c", ""}},
		"a=b=c":                 {{"a", "b=c"}},
		`q="x y"`:               {{"q", `"x y"`}},
		"a=1;b":                 {{"a", "1"}},
		"__Host-x=v;__Host-x=w": {{"__Host-x", "v"}, {"__Host-x", "w"}},
	}
	for in, want := range tests {
		var got []pair
		for rest := in; rest != ""; {
			var n, v string
			var ok bool
			n, v, rest, ok = nextPair(rest)
			if ok {
				got = append(got, pair{n, v})
			}
		}
		if len(got) != len(want) {
			t.Errorf("%q: pairs %q, want %q", in, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: pairs %q, want %q", in, got, want)
				break
			}
		}
	}
}

// The split is checked against net/http's lenient parser (Request.Cookies), which the filter cannot link (see the
// package comment): both must find the same token-like values under a name, and after stripping net/http must find
// none while every other cookie stays as it was.
func FuzzCookieHeader(f *testing.F) {
	for _, s := range []string{
		"a=1; b=2",
		"__Host-chips_affinity=AQID-_x; other=1",
		" __Host-chips_affinity=AQID ;__Host-chips_affinity=BBB",
		`x; __Host-chips_affinity="AQID"; q="a b"`,
		"a=1;;; __Host-chips_affinity=;__Host-chips_affinity",
		"__Host-chips_affinity=a; b=\"\\\"",
		"__Host-chips_affinity=a=b; __host-chips_affinity=c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if !headerSafe(h) {
			t.Skip() // proxies refuse control characters in header values before any filter runs
		}
		if strings.Contains(h, "\t") || strings.Contains(h, " =") || strings.Contains(h, "= ") {
			// The one deliberate difference: like browsers parsing cookie strings (RFC 6265bis §5.6), the split
			// trims whitespace around '=', where net/http keeps it in the value (and drops values holding a tab).
			// TestNextPair pins that behaviour down.
			t.Skip()
		}
		checkAgainstNetHTTP(t, h, cookieName)
	})
}

func checkAgainstNetHTTP(t *testing.T, h, name string) {
	t.Helper()
	var ours []string
	for rest := h; rest != ""; {
		var n, v string
		var ok bool
		n, v, rest, ok = nextPair(rest)
		if ok && n == name && tokenLike(v) {
			ours = append(ours, v)
		}
	}
	before := netHTTPCookies(h)
	var theirs []string
	for _, c := range before {
		if c.Name == name && !c.Quoted && tokenLike(c.Value) {
			theirs = append(theirs, c.Value)
		}
	}
	if strings.Join(ours, ",") != strings.Join(theirs, ",") {
		t.Fatalf("%q: values of %s: ours %q, net/http %q", h, name, ours, theirs)
	}

	stripped, found := stripPair(h, name)
	if !found {
		stripped = h
	}
	after := netHTTPCookies(stripped)
	var others []string
	for _, c := range before {
		if c.Name != name {
			others = append(others, c.String())
		}
	}
	var kept []string
	for _, c := range after {
		if c.Name == name && c.Value != "" {
			t.Fatalf("%q stripped to %q: net/http still finds %s=%q", h, stripped, name, c.Value)
		}
		if c.Name != name {
			kept = append(kept, c.String())
		}
	}
	if strings.Join(others, "\x00") != strings.Join(kept, "\x00") {
		t.Fatalf("%q stripped to %q: other cookies %q became %q", h, stripped, others, kept)
	}
}

func TestCookieHeaderAgainstNetHTTP(t *testing.T) {
	for _, h := range []string{
		"", "a=1", "__Host-chips_affinity=AQID-_x; other=1", "x; __Host-chips_affinity=a; y", "=;;=a; __Host-chips_affinity=b",
		"__Host-chips_affinity=a b; __Host-chips_affinity=c", "a=\"q;r\"; __Host-chips_affinity=d",
	} {
		checkAgainstNetHTTP(t, h, cookieName)
	}
}

func netHTTPCookies(h string) []*http.Cookie {
	r := http.Request{Header: http.Header{"Cookie": {h}}}
	return r.Cookies()
}

// tokenLike reports a non-empty value made of the sealed token's alphabet (base64url), the only values the filter
// can honour.
func tokenLike(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func headerSafe(h string) bool {
	for i := 0; i < len(h); i++ {
		if c := h[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
