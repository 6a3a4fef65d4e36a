package cookie

import (
	"strings"
	"testing"
)

// The vendor's example cookie (CometD's browser cookie) from the deployment notes.
const bayeux = "BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv"

var (
	lax            = Policy{SameSite: SameSiteLax}
	laxPartitioned = Policy{SameSite: SameSiteLax, Partitioned: true}
	strict         = Policy{SameSite: SameSiteStrict}
	withDomain     = Policy{SameSite: SameSiteNone, Partitioned: true, Domain: "example.com"}
	withRootPath   = Policy{SameSite: SameSiteNone, Partitioned: true, Path: "/"}
	withChatPath   = Policy{SameSite: SameSiteNone, Partitioned: true, Path: "/chat"}
	withHTTPOnly   = Policy{SameSite: SameSiteNone, Partitioned: true, HTTPOnly: true}
	everything     = Policy{SameSite: SameSiteNone, Partitioned: true, HTTPOnly: true, Path: "/", Domain: "example.com"}
)

type rewriteCase struct {
	name    string
	policy  *Policy // nil: DefaultPolicy()
	in      string
	want    string // "" when want == in
	outcome Outcome
}

// long returns n copies of c.
func long(c string, n int) string { return strings.Repeat(c, n) }

var rewriteCases = []rewriteCase{
	// The vendor's example and its compliant form.
	{name: "vendor example", in: bayeux + "; HttpOnly; Path=/",
		want: bayeux + "; HttpOnly; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "vendor example already rewritten", in: bayeux + "; HttpOnly; Path=/; Secure; SameSite=None; Partitioned", outcome: Compliant},
	{name: "bare cookie", in: "a=b", want: "a=b; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "attribute order does not matter", in: "a=b; Partitioned; SameSite=None; Secure", outcome: Compliant},

	// SameSite replaced, never just appended.
	{name: "SameSite=Lax replaced in place", in: "JSESSIONID=abc; Path=/chat; SameSite=Lax; HttpOnly",
		want: "JSESSIONID=abc; Path=/chat; SameSite=None; HttpOnly; Secure; Partitioned", outcome: Rewritten},
	{name: "SameSite=Strict replaced", in: "a=b; SameSite=Strict; Secure",
		want: "a=b; SameSite=None; Secure; Partitioned", outcome: Rewritten},
	{name: "later SameSite=Lax does not survive", in: "a=b; SameSite=None; Secure; SameSite=Lax",
		want: "a=b; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "three SameSite attributes become one", in: "a=b; samesite=strict; SameSite=None; SAMESITE=lax; Path=/",
		want: "a=b; SameSite=None; Path=/; Secure; Partitioned", outcome: Rewritten},
	{name: "overridden earlier SameSite left when compliant", in: "a=b; SameSite=Lax; SameSite=None; Secure; Partitioned", outcome: Compliant},
	{name: "SameSite with unknown value", in: "a=b; SameSite=Foo; Secure; Partitioned",
		want: "a=b; SameSite=None; Secure; Partitioned", outcome: Rewritten},
	{name: "SameSite without value", in: "a=b; SameSite",
		want: "a=b; SameSite=None; Secure; Partitioned", outcome: Rewritten},
	{name: "SameSite replaced keeps its spacing", in: "a=b ;SameSite = Lax ; Path=/ ",
		want: "a=b ;SameSite=None ; Path=/; Secure; Partitioned", outcome: Rewritten},

	// Flags: case, values, look-alikes, duplicates.
	{name: "odd casing counts", in: "a=b; secure; samesite=none; partitioned", outcome: Compliant},
	{name: "odd casing with lax", in: "a=b; sAmEsItE=lax; SECURE; PARTITIONED",
		want: "a=b; SameSite=None; SECURE; PARTITIONED", outcome: Rewritten},
	{name: "secure=xyz is Secure", in: "a=b; secure=xyz; SameSite=None; Partitioned", outcome: Compliant},
	{name: "Partitioned=1 is Partitioned", in: "a=b; Partitioned=1; Secure; SameSite=None", outcome: Compliant},
	{name: "Secure qux is not Secure", in: "a=b; Secure qux; SameSite=None; Partitioned",
		want: "a=b; Secure qux; SameSite=None; Partitioned; Secure", outcome: Rewritten},
	{name: "Unicode look-alike is not Secure", in: "a=b; ſecure; SameSite=None; Partitioned",
		want: "a=b; ſecure; SameSite=None; Partitioned; Secure", outcome: Rewritten},
	{name: "Partitioned never twice", in: "a=b; partitioned; Secure; SameSite=None; PARTITIONED", outcome: Compliant},
	{name: "duplicate Secure kept", in: "a=b; Secure; Secure",
		want: "a=b; Secure; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "unknown attributes stay in place", in: "a=b; Priority=High; SameSite=Lax; Foo; Path=/",
		want: "a=b; Priority=High; SameSite=None; Foo; Path=/; Secure; Partitioned", outcome: Rewritten},

	// Values.
	{name: "quoted value with space", in: `a="x y"; Path=/`,
		want: `a="x y"; Path=/; Secure; SameSite=None; Partitioned`, outcome: Rewritten},
	{name: "semicolon inside quotes ends the pair anyway", in: `a="x;y"`,
		want: `a="x;y"; Secure; SameSite=None; Partitioned`, outcome: Rewritten},
	{name: "value with '='", in: "token=a=b==",
		want: "token=a=b==; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "empty value", in: "a=; Path=/",
		want: "a=; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "name with space is still a cookie", in: "my cookie=v",
		want: "my cookie=v; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "Expires with commas", in: "id=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
		want: "id=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "Expires with commas compliant", in: "id=1; expires=Wed, 21-Oct-2037 07:28:00 GMT; Secure; SameSite=None; Partitioned", outcome: Compliant},

	// Not cookies: unchanged, malformed.
	{name: "no equals sign", in: "justtext", outcome: Malformed},
	{name: "no equals sign before attributes", in: "foo; Secure; a=b", outcome: Malformed},
	{name: "empty line", in: "", outcome: Malformed},
	{name: "only whitespace", in: "  \t ", outcome: Malformed},
	{name: "empty name", in: "=v; Path=/", outcome: Malformed},
	{name: "empty name and value", in: "=", outcome: Malformed},
	{name: "empty pair", in: " ; a=b", outcome: Malformed},
	{name: "NUL", in: "a=b\x00; Secure", outcome: Malformed},
	{name: "CR LF injection", in: "a=b; Path=/\r\nX-Injected: 1", outcome: Malformed},
	{name: "DEL", in: "a=\x7f", outcome: Malformed},
	{name: "CTL in attribute", in: "a=b; Foo=\x01", outcome: Malformed},
	{name: "HTAB is fine", in: "a=b;\tSecure\t;\tSameSite=None;\tPartitioned", outcome: Compliant},

	// Whitespace.
	{name: "whitespace everywhere", in: "  a = b ;  secure ;samesite = none;partitioned  ", outcome: Compliant},
	{name: "trailing semicolon dropped when appending", in: "a=b;",
		want: "a=b; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "trailing empty attributes dropped when appending", in: "a=b; Path=/ ; ; ",
		want: "a=b; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "trailing semicolon kept when compliant", in: "a=b; Secure; SameSite=None; Partitioned;", outcome: Compliant},
	{name: "empty attribute in the middle kept", in: "a=b;; Path=/",
		want: "a=b;; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},

	// Prefixes.
	{name: "__Host- gets Secure", in: "__Host-id=1; Path=/",
		want: "__Host-id=1; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "lowercase __host- is a prefix too", in: "__host-id=1; Path=/; Secure",
		want: "__host-id=1; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "__Host- without Path is rejected by browsers", in: "__Host-id=1; Secure", outcome: Malformed},
	{name: "__Host- with empty Path", in: "__Host-id=1; Path=; Secure", outcome: Malformed},
	{name: "__Host- without Path, policy Path=/", policy: &withRootPath, in: "__Host-id=1",
		want: "__Host-id=1; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "__Host- without Path, policy Path=/chat", policy: &withChatPath, in: "__Host-id=1; Secure", outcome: Malformed},
	{name: "__Host- with Path=/, policy Path=/chat", policy: &withChatPath, in: "__Host-id=1; Path=/",
		want: "__Host-id=1; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "__Host- with Domain", in: "__Host-id=1; Path=/; Domain=example.com; Secure", outcome: Malformed},
	{name: "__Host- with other Path", in: "__Host-id=1; Path=/app; Secure", outcome: Malformed},
	{name: "__Host- last Path wins", in: "__Host-id=1; Path=/app; Path=/; Secure",
		want: "__Host-id=1; Path=/app; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "__Host- never gets Domain", policy: &withDomain, in: "__HOST-id=1; Path=/; Secure",
		want: "__HOST-id=1; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "__Secure- gets Secure even under Lax", policy: &lax, in: "__Secure-id=1",
		want: "__Secure-id=1; Secure; SameSite=Lax", outcome: Rewritten},
	{name: "lowercase __secure- under Lax", policy: &lax, in: "__secure-id=1; SameSite=Lax",
		want: "__secure-id=1; SameSite=Lax; Secure", outcome: Rewritten},
	{name: "almost a prefix", policy: &lax, in: "__Secure_id=1; SameSite=Lax", outcome: Compliant},

	// Deletion cookies get the same rewrite; expiry untouched.
	{name: "deletion Max-Age=0", in: "a=; Max-Age=0; Path=/",
		want: "a=; Max-Age=0; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "deletion Max-Age=-1", in: "a=deleted; Max-Age=-1",
		want: "a=deleted; Max-Age=-1; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "deletion Expires in the past", in: "a=deleted; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; SameSite=Lax",
		want: "a=deleted; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; SameSite=None; Secure; Partitioned", outcome: Rewritten},

	// Size limits (RFC 6265bis §5.6).
	{name: "name+value 4096 octets", in: "n=" + long("v", 4095),
		want: "n=" + long("v", 4095) + "; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "name+value 4096 octets plus trimmed whitespace", in: "n = " + long("v", 4095) + " ; Path=/",
		want: "n = " + long("v", 4095) + " ; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "name+value 4097 octets", in: "n=" + long("v", 4096) + "; Path=/", outcome: Malformed},
	{name: "attribute value 1024 octets counts", in: "a=b; Secure=" + long("x", 1024) + "; SameSite=None; Partitioned", outcome: Compliant},
	{name: "attribute value 1025 octets is ignored", in: "a=b; Secure=" + long("x", 1025) + "; SameSite=None; Partitioned",
		want: "a=b; Secure=" + long("x", 1025) + "; SameSite=None; Partitioned; Secure", outcome: Rewritten},
	{name: "over-long SameSite replaced", in: "a=b; Secure; SameSite=" + long("x", 1025) + "; Partitioned",
		want: "a=b; Secure; Partitioned; SameSite=None", outcome: Rewritten},
	{name: "over-long SameSite after a good one dropped", in: "a=b; SameSite=None; Secure; Partitioned; SameSite=" + long("x", 1025),
		want: "a=b; SameSite=None; Secure; Partitioned", outcome: Rewritten},
	{name: "over-long Path is no Path", policy: &withRootPath, in: "a=b; Path=/" + long("x", 1024),
		want: "a=b; Path=/" + long("x", 1024) + "; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "over-long unknown attribute kept", in: "a=b; Foo=" + long("x", 2000),
		want: "a=b; Foo=" + long("x", 2000) + "; Secure; SameSite=None; Partitioned", outcome: Rewritten},

	// Domain policy.
	{name: "Domain added", policy: &withDomain, in: "a=b",
		want: "a=b; Domain=example.com; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "Domain replaced in place", policy: &withDomain, in: "a=b; Domain=chat.example.com; Path=/",
		want: "a=b; Domain=example.com; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "Domain with dot and case already right", policy: &withDomain, in: "a=b; Domain=.EXAMPLE.com; Secure; SameSite=None; Partitioned", outcome: Compliant},
	{name: "duplicate Domain attributes become one", policy: &withDomain, in: "a=b; Domain=x.example.com; Path=/; domain=y.example.com",
		want: "a=b; Path=/; Domain=example.com; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "Domain left alone without policy", in: "a=b; Domain=chat.example.com",
		want: "a=b; Domain=chat.example.com; Secure; SameSite=None; Partitioned", outcome: Rewritten},

	// Path policy.
	{name: "Path added", policy: &withRootPath, in: "a=b",
		want: "a=b; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "existing Path kept", policy: &withRootPath, in: "a=b; Path=/chat; Secure; SameSite=None; Partitioned", outcome: Compliant},
	{name: "empty Path is no Path", policy: &withRootPath, in: "a=b; Path=",
		want: "a=b; Path=; Path=/; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "relative Path is no Path", policy: &withChatPath, in: "a=b; Path=chat; Secure; SameSite=None; Partitioned",
		want: "a=b; Path=chat; Secure; SameSite=None; Partitioned; Path=/chat", outcome: Rewritten},

	// HttpOnly policy.
	{name: "HttpOnly added", policy: &withHTTPOnly, in: "a=b",
		want: "a=b; HttpOnly; Secure; SameSite=None; Partitioned", outcome: Rewritten},
	{name: "httponly in any case counts", policy: &withHTTPOnly, in: "a=b; httponly; Secure; SameSite=None; Partitioned", outcome: Compliant},

	// Every option at once, in the canonical order.
	{name: "full policy", policy: &everything, in: bayeux,
		want: bayeux + "; Path=/; Domain=example.com; HttpOnly; Secure; SameSite=None; Partitioned", outcome: Rewritten},

	// Other SameSite policies.
	{name: "Lax with Partitioned still needs Secure", policy: &laxPartitioned, in: "a=b",
		want: "a=b; Secure; SameSite=Lax; Partitioned", outcome: Rewritten},
	{name: "Lax without Partitioned needs no Secure", policy: &lax, in: "a=b",
		want: "a=b; SameSite=Lax", outcome: Rewritten},
	{name: "existing Partitioned is kept and needs Secure", policy: &lax, in: "a=b; Partitioned",
		want: "a=b; Partitioned; Secure; SameSite=Lax", outcome: Rewritten},
	{name: "None replaced by Lax", policy: &lax, in: "a=b; SameSite=None; Secure",
		want: "a=b; SameSite=Lax; Secure", outcome: Rewritten},
	{name: "Strict already", policy: &strict, in: "a=b; SameSite=strict", outcome: Compliant},
}

func TestRewrite(t *testing.T) {
	for _, tc := range rewriteCases {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			if tc.policy != nil {
				p = *tc.policy
			}
			want := tc.want
			if want == "" {
				want = tc.in
			}
			got, outcome := checkRewrite(t, tc.in, p)
			if got != want || outcome != tc.outcome {
				t.Errorf("Rewrite(%q)\n got %q, %v\nwant %q, %v", tc.in, got, outcome, want, tc.outcome)
			}
		})
	}
}

// Several Set-Cookie headers of one response are rewritten one by one: each
// stays a separate value, in order, and none influences another.
func TestRewriteSeveralHeaders(t *testing.T) {
	response := []string{
		bayeux + "; HttpOnly; Path=/",
		"JSESSIONID=node1~0A1B2C; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/genesys; SameSite=Lax",
		"BIGipServerpool_gms=rd5o00000000000000000000ffff0a000005o8080; path=/; Httponly; Secure",
	}
	want := []string{
		bayeux + "; HttpOnly; Path=/; Secure; SameSite=None; Partitioned",
		"JSESSIONID=node1~0A1B2C; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/genesys; SameSite=None; Secure; Partitioned",
		"BIGipServerpool_gms=rd5o00000000000000000000ffff0a000005o8080; path=/; Httponly; Secure; SameSite=None; Partitioned",
	}
	for i, line := range response {
		if got, _ := Rewrite(line, DefaultPolicy()); got != want[i] {
			t.Errorf("header %d: got %q, want %q", i, got, want[i])
		}
	}
}

func TestRewriteAllocations(t *testing.T) {
	compliant := bayeux + "; HttpOnly; Path=/; Secure; SameSite=None; Partitioned"
	if n := testing.AllocsPerRun(100, func() { Rewrite(compliant, DefaultPolicy()) }); n != 0 {
		t.Errorf("compliant cookie: %v allocations, want 0", n)
	}
	malformed := "not a cookie"
	if n := testing.AllocsPerRun(100, func() { Rewrite(malformed, DefaultPolicy()) }); n != 0 {
		t.Errorf("malformed line: %v allocations, want 0", n)
	}
	for _, line := range []string{
		bayeux + "; HttpOnly; Path=/",
		"a=b; SameSite=Lax; Domain=chat.example.com; samesite=strict",
		"a=b; Path=/ ; ; ",
	} {
		if n := testing.AllocsPerRun(100, func() { Rewrite(line, everything) }); n != 1 {
			t.Errorf("Rewrite(%q): %v allocations, want 1", line, n)
		}
	}
}

func TestRewriteInvalidPolicyIsSafe(t *testing.T) {
	bad := Policy{SameSite: SameSite(42), Partitioned: true, Path: "/x; Domain=evil.example", Domain: "evil.example\r\nX: y"}
	got, outcome := Rewrite("a=b", bad)
	if want := "a=b; Secure; SameSite=None; Partitioned"; got != want || outcome != Rewritten {
		t.Errorf("Rewrite with an invalid policy = %q, %v; want %q, rewritten", got, outcome, want)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Rewritten: "rewritten", Compliant: "compliant", Malformed: "malformed", Outcome(9): "unknown"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}
