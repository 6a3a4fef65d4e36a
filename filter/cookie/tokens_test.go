package cookie

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// Byte-level fuzzing rarely assembles whole tokens such as ") AppleWebKit/"
// or "SameSite". These tests build inputs from the tokens that matter, with a
// fixed seed, and check them with the same oracles as the fuzz targets.

var cookieTokens = []string{
	"a", "b", "=", "=", ";", ";", "; ", " ", "\t", `"`, ",", "é", "\x00", "\r\n",
	"SameSite", "samesite", "None", "none", "Lax", "Strict", "Secure", "SECURE", "HttpOnly",
	"Partitioned", "partitioned", "Path", "/", "/chat", "Domain", "example.com", ".Example.COM",
	"Expires", "Wed, 21 Oct 2037 07:28:00 GMT", "Max-Age", "0", "-1", "__Host-", "__host-",
	"__Secure-", "__SECURE-", "Priority=High", strings.Repeat("x", 1020), strings.Repeat("y", 4090),
}

func randomLine(r *rand.Rand, tokens []string, maxTokens int) string {
	var b strings.Builder
	for n := r.IntN(maxTokens) + 1; n > 0; n-- {
		b.WriteString(tokens[r.IntN(len(tokens))])
	}
	return b.String()
}

func TestRewriteRandomTokens(t *testing.T) {
	r := rand.New(rand.NewPCG(6265, 2026))
	for i := 0; i < 30000; i++ {
		line := randomLine(r, cookieTokens, 24)
		if r.IntN(2) == 0 {
			// Start most lines with a plausible cookie pair.
			line = [...]string{"a=b", "__Host-id=1", "__secure-x=", "n = v "}[r.IntN(4)] + ";" + line
		}
		bits := uint8(r.IntN(256))
		checkRewrite(t, line, policyFromBits(bits))
		checkStrip(t, line)
		checkName(t, line)
		if t.Failed() {
			t.Fatalf("input %q, policy bits %#x", line, bits)
		}
	}
}

var userAgentTokens = []string{
	"(iP", "(iPhone", "; CPU ", "iPhone ", "OS ", "12", "13", "012", "_", "1", "4", ") AppleWebKit/",
	"605.1.15", " (KHTML, like Gecko)", "(Macintosh;", " Intel ", "Mac OS X ", "10", "14", "15",
	"Version/", " Safari/", "Safari", "Chrome", "Chromium", "Chrom", "/", " ", ".", "51", "66", "67",
	"UCBrowser/", "Mozilla/", "5.0", " (", ")", "x",
}

func TestUserAgentRandomTokens(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 67))
	for i := 0; i < 30000; i++ {
		ua := randomLine(r, userAgentTokens, 16)
		checkUserAgent(t, ua)
		if t.Failed() {
			t.Fatalf("input %q", ua)
		}
	}
}

var authorityTokens = []string{
	"a", "x", "www", "example", "com", "co", "uk", "github", "io", "kawasaki", "jp", "city",
	"ck", "test", "localhost", ".", ".", ":", "443", "[", "]", "::1", "1", "0x7f", "-", "_", "A", "É",
}

func TestRegistrableDomainRandomTokens(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 30000; i++ {
		checkRegistrableDomain(t, randomLine(r, authorityTokens, 8))
		if t.Failed() {
			t.FailNow()
		}
	}
}
