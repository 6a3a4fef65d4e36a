package seal

import (
	"reflect"
	"testing"
)

// FuzzOpen attacks the opener with arbitrary cookie values and names. Open must never panic, must fail only with
// its sentinels, and must open nothing but values Seal produced: a forgery that authenticates would need to
// guess a 128-bit GCM tag. Whatever opens must seal and open again to the same token.
func FuzzOpen(f *testing.F) {
	s := mustSealer(f, keyA, keyB)
	// genuine maps each value known to open to the cookie name it was sealed for. Only the fixed golden tokens
	// qualify: a value sealed afresh here would be saved in the fuzz cache and, opening in a later run without
	// being known to that run, read as a forgery.
	genuine := map[string]string{}
	for _, g := range goldenTokens {
		genuine[g.value] = g.name
		f.Add(g.value, g.name)
		f.Add(g.value, g.name+"x")
	}
	f.Add("", cookieName)
	f.Add(goldenTokens[0].value[:minValueLen], cookieName)

	f.Fuzz(func(t *testing.T, value, aad string) {
		tok, err := s.Open(value, aad)
		if err != nil {
			if err != ErrMalformed && err != ErrTampered {
				t.Fatalf("Open(%q, %q) = %v, not a sentinel error", value, aad, err)
			}
			if !reflect.DeepEqual(tok, Token{}) {
				t.Fatalf("Open(%q, %q) failed yet returned %+v", value, aad, tok)
			}
			return
		}
		if name, ok := genuine[value]; !ok || name != aad {
			t.Fatalf("Open(%q, %q) = %+v: a value Seal never produced (for this name) opened", value, aad, tok)
		}
		again, err := s.Seal(tok, aad)
		if err != nil {
			t.Fatalf("Seal(%+v) = %v", tok, err)
		}
		tok2, err := s.Open(again, aad)
		if err != nil || !reflect.DeepEqual(tok2, tok) {
			t.Fatalf("resealed token opened as %+v, %v; want %+v", tok2, err, tok)
		}
	})
}
