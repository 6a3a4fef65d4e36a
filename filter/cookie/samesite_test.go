package cookie

import "testing"

func TestParseSameSite(t *testing.T) {
	for in, want := range map[string]SameSite{
		"None": SameSiteNone, "none": SameSiteNone, "NONE": SameSiteNone,
		"Lax": SameSiteLax, "lAX": SameSiteLax,
		"Strict": SameSiteStrict, "strict": SameSiteStrict,
	} {
		got, err := ParseSameSite(in)
		if err != nil || got != want {
			t.Errorf("ParseSameSite(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "none!", " None", "Default", "ſtrict"} {
		if got, err := ParseSameSite(in); err == nil {
			t.Errorf("ParseSameSite(%q) = %v, want an error", in, got)
		}
	}
}

func TestSameSiteString(t *testing.T) {
	for s, want := range map[SameSite]string{
		SameSiteNone: "None", SameSiteLax: "Lax", SameSiteStrict: "Strict", SameSite(7): "SameSite(7)",
	} {
		if got := s.String(); got != want {
			t.Errorf("SameSite(%d).String() = %q, want %q", int(s), got, want)
		}
		if s.valid() {
			if back, err := ParseSameSite(s.String()); err != nil || back != s {
				t.Errorf("ParseSameSite(%q) = %v, %v; want %v", s.String(), back, err, s)
			}
		}
	}
}
