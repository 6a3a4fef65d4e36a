package cookie

import (
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"
)

func TestRegistrableDomain(t *testing.T) {
	for _, tc := range []struct {
		authority string
		want      string // "" means ok == false
	}{
		{"chat.example.com:443", "example.com"},
		{"chat.example.com", "example.com"},
		{"example.com", "example.com"},
		{"a.b.c.example.com", "example.com"},
		{"www.example.co.uk", "example.co.uk"},
		{"example.co.uk", "example.co.uk"},
		{"CHAT.Example.COM", "example.com"},
		{"chat.example.com.", "example.com"},
		{"chat.example.com.:8443", "example.com"},
		{"user.github.io", "user.github.io"},   // private section of the list
		{"a.user.github.io", "user.github.io"}, // private section of the list
		{"shop.test", "shop.test"},             // not on the list: implicit "*" rule
		{"chat.shop.test", "shop.test"},
		{"localhost.com", "localhost.com"},
		{"x.city.kawasaki.jp", "city.kawasaki.jp"}, // exception rule
		{"x.y.kawasaki.jp", "x.y.kawasaki.jp"},     // wildcard rule
		{"xn--80ak6aa92e.com", "xn--80ak6aa92e.com"},
		{"www.xn--p1ai", "www.xn--p1ai"}, // .рф in Punycode
		{"localhost", ""},
		{"localhost:8080", ""},
		{"intranet", ""},
		{"co.uk", ""},
		{"github.io", ""},
		{"com", ""},
		{"y.kawasaki.jp", ""},
		{"", ""},
		{".", ""},
		{":443", ""},
		{"127.0.0.1", ""},
		{"127.0.0.1:8080", ""},
		{"10.1.2.3", ""},
		{"0x7f.1", ""},
		{"example.0x1F", ""},
		{"1.2.3", ""},
		{"[::1]:8443", ""},
		{"[::1]", ""},
		{"::1", ""},
		{"2001:db8::1", ""},
		{".example.com", ""},
		{"a..example.com", ""},
		{"example.com..", ""},
		{"exa mple.com", ""},
		{"bücher.de", ""},
		{"example.com/path", ""},
		{strings.Repeat("a.", 127) + "com", ""},
	} {
		want := tc.want
		got, ok := RegistrableDomain(tc.authority)
		if got != want || ok != (want != "") {
			t.Errorf("RegistrableDomain(%q) = %q, %v; want %q, %v", tc.authority, got, ok, want, want != "")
		}
	}
}

// Every rule of the embedded list, probed at and below its level, gives the
// same answer as golang.org/x/net/publicsuffix, whose list it is.
func TestRegistrableDomainMatchesPublicSuffixPackage(t *testing.T) {
	rules := strings.Split(strings.TrimSuffix(publicSuffixRules, "\n"), "\n")
	if len(rules) < 9000 {
		t.Fatalf("only %d rules", len(rules))
	}
	checked := 0
	for _, rule := range rules {
		body := strings.TrimPrefix(strings.TrimPrefix(rule, "!"), "*.")
		for _, host := range []string{body, "x." + body, "y.x." + body, "z.y.x." + body} {
			checkRegistrableDomain(t, host)
			checked++
		}
	}
	t.Logf("%d hosts checked against %s", checked, publicSuffixListSource)
}

func TestPublicSuffixRulesSorted(t *testing.T) {
	rules := strings.Split(strings.TrimSuffix(publicSuffixRules, "\n"), "\n")
	for i := 1; i < len(rules); i++ {
		if rules[i-1] >= rules[i] {
			t.Fatalf("rules %q and %q out of order: the binary search needs them sorted", rules[i-1], rules[i])
		}
	}
	for _, rule := range rules {
		prefix := ""
		if strings.HasPrefix(rule, "!") || strings.HasPrefix(rule, "*.") {
			prefix = rule[:len(rule)-len(strings.TrimLeft(rule, "!*."))]
		}
		if !hasRule(prefix, rule[len(prefix):]) {
			t.Fatalf("hasRule does not find %q", rule)
		}
		body := rule[len(prefix):]
		if hasRule(prefix, body+"-no-such-rule") || (prefix != "" && hasRule("", body) && !strings.Contains(publicSuffixRules, "\n"+body+"\n")) {
			t.Fatalf("hasRule finds a rule that is not there, next to %q", rule)
		}
	}
}

func TestRegistrableDomainAllocations(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { RegistrableDomain("chat.example.co.uk:443") }); n != 0 {
		t.Errorf("lowercase host: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { RegistrableDomain("Chat.Example.CO.UK:443") }); n != 1 {
		t.Errorf("host with capitals: %v allocations, want 1", n)
	}
}

// checkRegistrableDomain compares one authority with golang.org/x/net.
func checkRegistrableDomain(t *testing.T, authority string) {
	t.Helper()
	got, ok := RegistrableDomain(authority)
	host, valid := hostOf(authority)
	if !valid || endsInNumber(strings.ToLower(host)) {
		if ok {
			t.Fatalf("RegistrableDomain(%q) = %q for an authority that is not a host name", authority, got)
		}
		return
	}
	host = strings.ToLower(host)
	want, err := publicsuffix.EffectiveTLDPlusOne(host)
	if !strings.Contains(host, ".") {
		want, err = "", nil // single label: no registrable domain by design
	}
	if got != want || ok != (err == nil && want != "") {
		t.Fatalf("RegistrableDomain(%q) = %q, %v; golang.org/x/net says %q, %v", authority, got, ok, want, err)
	}
}
