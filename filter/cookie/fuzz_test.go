package cookie

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyFromBits spreads the fuzzer's policy byte over every policy knob,
// including values Validate rejects (Rewrite must stay safe with those):
//
//	bits 0-1 SameSite: None, Lax, Strict, invalid
//	bit  2   Partitioned
//	bit  3   HTTPOnly
//	bits 4-5 Path: "", "/", "/chat", "chat" (invalid)
//	bits 6-7 Domain: "", "example.com", "EXAMPLE.com", "bad domain" (invalid)
func policyFromBits(bits uint8) Policy {
	return Policy{
		SameSite:    SameSite(bits & 3),
		Partitioned: bits&4 != 0,
		HTTPOnly:    bits&8 != 0,
		Path:        [...]string{"", "/", "/chat", "chat"}[bits>>4&3],
		Domain:      [...]string{"", "example.com", "EXAMPLE.com", "bad domain"}[bits>>6&3],
	}
}

// bitsOf finds the policy byte of a table policy.
func bitsOf(p Policy) uint8 {
	for b := 0; b < 256; b++ {
		if policyFromBits(uint8(b)) == p {
			return uint8(b)
		}
	}
	panic("policy not expressible as fuzz bits")
}

func FuzzRewrite(f *testing.F) {
	defaultBits := bitsOf(DefaultPolicy())
	for _, tc := range rewriteCases {
		f.Add(tc.in, defaultBits)
		if tc.policy != nil {
			f.Add(tc.in, bitsOf(*tc.policy))
		}
		f.Add(tc.in, uint8(0xff))
	}
	f.Fuzz(func(t *testing.T, line string, bits uint8) {
		checkRewrite(t, line, policyFromBits(bits))
	})
}

func FuzzName(f *testing.F) {
	for _, tc := range rewriteCases {
		f.Add(tc.in)
	}
	f.Add("\r\na=b")
	f.Add(" a\t=b;c=d")
	f.Fuzz(checkName)
}

func FuzzStripSameSiteNone(f *testing.F) {
	for _, tc := range rewriteCases {
		f.Add(tc.in)
		if out, _ := Rewrite(tc.in, DefaultPolicy()); out != tc.in {
			f.Add(out)
		}
	}
	f.Fuzz(checkStrip)
}

func FuzzSameSiteNoneIncompatible(f *testing.F) {
	for _, tc := range userAgentCases {
		f.Add(tc.ua)
	}
	for _, ua := range userAgentEdgeCases {
		f.Add(ua)
	}
	f.Fuzz(checkUserAgent)
}

func FuzzRegistrableDomain(f *testing.F) {
	for _, authority := range []string{
		"chat.example.com:443", "www.example.co.uk", "user.github.io", "x.city.kawasaki.jp",
		"localhost", "127.0.0.1", "[::1]:8443", "co.uk", "A.B.C.D.E.example.COM.",
	} {
		f.Add(authority)
	}
	f.Fuzz(checkRegistrableDomain)
}

// The interesting inputs the fuzzers keep in this package's testdata (where
// `go test` replays them) are mirrored under the repository's
// testdata/fuzz/cookie, the project's shared home for fuzz corpora.
func TestFuzzCorpusMirrored(t *testing.T) {
	local, err := filepath.Glob(filepath.Join("testdata", "fuzz", "Fuzz*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(local) == 0 {
		t.Fatal("no fuzz corpus in testdata/fuzz")
	}
	for _, path := range local {
		rel, _ := filepath.Rel(filepath.Join("testdata", "fuzz"), path)
		mirror := filepath.Join("..", "..", "testdata", "fuzz", "cookie", rel)
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(mirror)
		if err != nil {
			t.Errorf("%s is not mirrored: %v", path, err)
			continue
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s", mirror, path)
		}
		if !strings.HasPrefix(string(want), "go test fuzz v1\n") {
			t.Errorf("%s is not a Go fuzz corpus file", path)
		}
	}
}
