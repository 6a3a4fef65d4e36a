package cookie

import (
	"net/http"
	"testing"
)

func TestStripSameSiteNone(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		changed  bool
	}{
		{"a=b; Secure; SameSite=None; Partitioned", "a=b; Secure; Partitioned", true},
		{"a=b; SameSite=none", "a=b", true},
		{"a=b;SameSite=None;Secure", "a=b;Secure", true},
		{"a=b; sAmEsItE = NONE ; Path=/", "a=b; Path=/", true},
		// Every SameSite goes, so the earlier Lax cannot take over.
		{"a=b; SameSite=Lax; SameSite=None; Secure", "a=b; Secure", true},
		// Only the effective value matters.
		{"a=b; SameSite=None; SameSite=Lax", "a=b; SameSite=None; SameSite=Lax", false},
		{"a=b; SameSite=Strict; Secure", "a=b; SameSite=Strict; Secure", false},
		{"a=b; Secure", "a=b; Secure", false},
		{"a=b; SameSite=Nonesuch", "a=b; SameSite=Nonesuch", false},
		{"a=b; SameSite=None; SameSite=" + long("x", 1025), "a=b", true},
		{"x; SameSite=None", "x; SameSite=None", false},
		{"a=b\r\n; SameSite=None", "a=b\r\n; SameSite=None", false},
	} {
		got, changed := StripSameSiteNone(tc.in)
		if got != tc.want || changed != tc.changed {
			t.Errorf("StripSameSiteNone(%q) = %q, %v; want %q, %v", tc.in, got, changed, tc.want, tc.changed)
		}
	}
}

// StripSameSiteNone after Rewrite gives what an incompatible client needs:
// Secure and Partitioned, no SameSite.
func TestStripAfterRewrite(t *testing.T) {
	out, _ := Rewrite(bayeux+"; HttpOnly; Path=/; SameSite=Lax", DefaultPolicy())
	got, changed := StripSameSiteNone(out)
	if want := bayeux + "; HttpOnly; Path=/; Secure; Partitioned"; got != want || !changed {
		t.Errorf("StripSameSiteNone(%q) = %q, %v; want %q, true", out, got, changed, want)
	}
}

// checkStrip asserts StripSameSiteNone's promises; shared with the fuzz target.
func checkStrip(t *testing.T, in string) {
	t.Helper()
	out, changed := StripSameSiteNone(in)
	if !changed {
		if out != in {
			t.Fatalf("StripSameSiteNone(%q) = %q, false: changed without saying so", in, out)
		}
		return
	}
	c, ok := refParse(out)
	if !ok {
		t.Fatalf("StripSameSiteNone(%q) = %q: not a cookie any more", in, out)
	}
	before, _ := refParse(in)
	if before.view().sameSite != "none" {
		t.Fatalf("StripSameSiteNone(%q) changed a cookie whose SameSite is %q", in, before.view().sameSite)
	}
	if c.name != before.name || c.value != before.value {
		t.Fatalf("StripSameSiteNone(%q) = %q: name or value changed", in, out)
	}
	for _, a := range c.attributes {
		if a.lowerName == "samesite" {
			t.Fatalf("StripSameSiteNone(%q) = %q: SameSite left", in, out)
		}
	}
	if got, _ := refParse(out); len(got.keptTexts(Policy{})) != len(before.keptTexts(Policy{})) {
		t.Fatalf("StripSameSiteNone(%q) = %q: removed more than SameSite", in, out)
	}
	if again, changedAgain := StripSameSiteNone(out); changedAgain || again != out {
		t.Fatalf("StripSameSiteNone is not idempotent on %q", in)
	}
	if _, err := http.ParseSetCookie(in); err == nil {
		if _, err := http.ParseSetCookie(out); err != nil {
			t.Fatalf("net/http parses %q but not %q: %v", in, out, err)
		}
	}
}
