package cookie

import (
	"strings"
	"testing"
)

func TestDefaultPolicy(t *testing.T) {
	if got, want := DefaultPolicy(), (Policy{SameSite: SameSiteNone, Partitioned: true}); got != want {
		t.Errorf("DefaultPolicy() = %+v, want %+v", got, want)
	}
	if err := DefaultPolicy().Validate(); err != nil {
		t.Errorf("DefaultPolicy().Validate() = %v", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{
		everything,
		{SameSite: SameSiteStrict, Path: "/genesys/2/chat"},
		{Domain: "example.co.uk"},
		{Path: "/" + long("x", 1023)},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{SameSite: -1}, "policy SameSite"},
		{Policy{SameSite: 3}, "policy SameSite"},
		{Policy{Path: "chat"}, "policy Path"},
		{Policy{Path: "/a;b"}, "policy Path"},
		{Policy{Path: "/a\nb"}, "policy Path"},
		{Policy{Path: "/a "}, "policy Path"},
		{Policy{Path: "/" + long("x", 1024)}, "policy Path"},
		{Policy{Domain: ".example.com"}, "policy Domain"},
		{Policy{Domain: "example.com."}, "policy Domain"},
		{Policy{Domain: "exa mple.com"}, "policy Domain"},
		{Policy{Domain: "example.com; Path=/"}, "policy Domain"},
		{Policy{Domain: long("a", 254)}, "policy Domain"},
	} {
		err := tc.p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "cookie: ") {
			t.Errorf("%+v: Validate() = %v, want an error naming %q", tc.p, err, tc.want)
		}
	}
}
