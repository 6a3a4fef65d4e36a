package cookie

import (
	"net/http"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	for _, tc := range []struct {
		line string
		name string
		ok   bool
	}{
		{bayeux + "; HttpOnly; Path=/", "BAYEUX_BROWSER", true},
		{"a=b", "a", true},
		{"a=", "a", true},
		{"  a \t=b", "a", true},
		{"a=b=c; d=e", "a", true},
		{"__Host-id=1; Path=/", "__Host-id", true},
		{"my cookie=v", "my cookie", true},
		{"a", "", false},
		{"", "", false},
		{"=b", "", false},
		{" =b", "", false},
		{"; a=b", "", false},
		{"a; b=c", "", false},
		{"a\x01=b", "", false},
		{"a\r\n=b", "", false},
	} {
		name, ok := Name(tc.line)
		if name != tc.name || ok != tc.ok {
			t.Errorf("Name(%q) = %q, %v; want %q, %v", tc.line, name, ok, tc.name, tc.ok)
		}
		checkName(t, tc.line)
	}
}

func TestNameAllocations(t *testing.T) {
	line := bayeux + "; HttpOnly; Path=/"
	if n := testing.AllocsPerRun(100, func() { Name(line) }); n != 0 {
		t.Errorf("Name: %v allocations, want 0", n)
	}
}

// checkName asserts Name's promises for one line; shared with FuzzName.
func checkName(t *testing.T, line string) {
	t.Helper()
	name, ok := Name(line)
	if !ok {
		if name != "" {
			t.Fatalf("Name(%q) = %q, false: want an empty name with false", line, name)
		}
		// net/http also trims CR and LF around the name; Name refuses them.
		if c, err := http.ParseSetCookie(line); err == nil {
			if rawName, _, _ := strings.Cut(line, "="); !strings.ContainsAny(rawName, "\r\n") {
				t.Fatalf("Name(%q) = false, but net/http finds the cookie %q", line, c.Name)
			}
		}
		return
	}
	if name == "" || name != trimWSP(name) || containsCTL(name) {
		t.Fatalf("Name(%q) = %q: empty, untrimmed or with CTLs", line, name)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == ';' || name[i] == '=' {
			t.Fatalf("Name(%q) = %q contains %q", line, name, name[i])
		}
	}
	if c, err := http.ParseSetCookie(line); err == nil && c.Name != name {
		t.Fatalf("Name(%q) = %q, net/http says %q", line, name, c.Name)
	}
	if c, ok := refParse(line); ok && c.name != name {
		t.Fatalf("Name(%q) = %q, the reference parser says %q", line, name, c.name)
	}
}
