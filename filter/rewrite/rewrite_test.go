package rewrite

import (
	"reflect"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
)

const (
	modernUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	chrome60 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.113 Safari/537.36"
)

func mustParse(t *testing.T, doc string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRequest(t *testing.T) {
	c := mustParse(t, `{"cookies":{"domain":"auto"},"scope":{"path_prefixes":["/genesys/"]}}`)
	r := NewRequest(c, "chat.example.com:443", "/genesys/2/chat", modernUA)
	if !r.InScope || r.Policy.Domain != "example.com" || r.IncompatibleClient {
		t.Errorf("in-scope request = %+v", r)
	}
	if r := NewRequest(c, "chat.example.com", "/other", modernUA); r.InScope {
		t.Errorf("out-of-scope request = %+v", r)
	}
	if r := NewRequest(c, "127.0.0.1:8443", "/genesys/", modernUA); r.Policy.Domain != "" {
		t.Errorf("an IP host got Domain %q", r.Policy.Domain)
	}
	if r := NewRequest(c, "chat.example.com", "/genesys/", chrome60); !r.IncompatibleClient {
		t.Error("Chrome 60 not recognised as mishandling SameSite=None")
	}
	// With a Lax policy nothing emits SameSite=None, so old clients need no special treatment.
	lax := mustParse(t, `{"cookies":{"same_site":"Lax"}}`)
	if r := NewRequest(lax, "chat.example.com", "/", chrome60); r.IncompatibleClient {
		t.Error("incompatible-client handling applied to a Lax policy")
	}
}

func TestResponse(t *testing.T) {
	c := mustParse(t, `{"cookies":{"exclude":["_ga*"]}}`)
	req := NewRequest(c, "chat.example.com", "/", modernUA)
	values := []string{
		"BAYEUX_BROWSER=abc; HttpOnly; Path=/",
		"_ga=GA1.2; Path=/",
		"ok=1; Secure; SameSite=None; Partitioned",
		"garbage without equals",
	}
	var counts Counts
	var buf Buffer
	if !Response(c, &req, values, &counts, &buf) {
		t.Fatal("Response reported no change")
	}
	want := []string{
		"BAYEUX_BROWSER=abc; HttpOnly; Path=/; Secure; SameSite=None; Partitioned",
		"_ga=GA1.2; Path=/",
		"ok=1; Secure; SameSite=None; Partitioned",
		"garbage without equals",
	}
	if !reflect.DeepEqual(values, want) {
		t.Errorf("values\n got %q\nwant %q", values, want)
	}
	if counts != (Counts{Rewritten: 1, Compliant: 1, SkippedSelection: 1, Malformed: 1}) {
		t.Errorf("counts = %+v", counts)
	}

	old := NewRequest(c, "chat.example.com", "/", chrome60)
	values = []string{"BAYEUX_BROWSER=abc; SameSite=None; Secure"}
	counts = Counts{}
	Response(c, &old, values, &counts, &buf)
	if values[0] != "BAYEUX_BROWSER=abc; Secure" || counts != (Counts{SkippedUserAgent: 1}) {
		t.Errorf("old client: %q, counts %+v", values[0], counts)
	}

	values = []string{"a=1; Secure; SameSite=None; Partitioned"}
	if Response(c, &req, values, &Counts{}, &buf) {
		t.Error("a compliant response reported a change")
	}
}

// TestSelectAllShortcutKeepsOutcomes: the default selection skips name extraction, which must not change any
// outcome compared with a selection that extracts names and selects the same cookies.
func TestSelectAllShortcutKeepsOutcomes(t *testing.T) {
	all := mustParse(t, `{}`)
	named := mustParse(t, `{"cookies":{"include":["*"],"exclude":["no-cookie-has-this-name"]}}`)
	if !all.SelectsAll() || named.SelectsAll() {
		t.Fatalf("SelectsAll: default %v, with exclude %v", all.SelectsAll(), named.SelectsAll())
	}
	for _, v := range []string{
		"a=1", "=v", "=", "novalue", "; a=1", "a=1; Secure; SameSite=None; Partitioned", "a\x01=1", "  b = 2 ; Path=/",
		"__Host-x=1; Domain=example.com", "",
	} {
		r1 := NewRequest(all, "chat.example.com", "/", modernUA)
		r2 := NewRequest(named, "chat.example.com", "/", modernUA)
		if got, want := One(all, &r1, v), One(named, &r2, v); got != want {
			t.Errorf("%q: default selection gives %+v, explicit selection %+v", v, got, want)
		}
	}
}

// TestResponseReusesBuffer: once the buffer has grown, rewriting a response allocates nothing.
func TestResponseReusesBuffer(t *testing.T) {
	c := mustParse(t, `{}`)
	req := NewRequest(c, "chat.example.com", "/", modernUA)
	in := []string{"a=1; Path=/", "b=2; HttpOnly", "c=3; SameSite=Lax"}
	values := make([]string, len(in))
	var buf Buffer
	var counts Counts
	allocs := testing.AllocsPerRun(100, func() {
		copy(values, in)
		Response(c, &req, values, &counts, &buf)
	})
	if allocs != 0 || counts[Rewritten] != 101*len(in) {
		t.Errorf("%v allocations per response, %d rewritten; want 0 and %d", allocs, counts[Rewritten], 101*len(in))
	}
}
