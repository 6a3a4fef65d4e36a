package cookie

import "testing"

// chatResponse holds the Set-Cookie values of a typical chat response: the
// CometD browser cookie, a servlet session cookie with an expiry, and the
// load balancer's affinity cookie.
var chatResponse = []string{
	"BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; HttpOnly; Path=/",
	"JSESSIONID=node01ab2cd3ef4gh5ij6kl7mn8op9.node0; Path=/genesys; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly",
	"BIGipServer~gms~pool_gms_8080=rd5o00000000000000000000ffff0a000005o8080; path=/; Httponly; Secure",
}

var benchSink string

func BenchmarkRewriteChatResponse(b *testing.B) {
	p := DefaultPolicy()
	b.ReportAllocs()
	for b.Loop() {
		for _, line := range chatResponse {
			benchSink, _ = Rewrite(line, p)
		}
	}
}

func BenchmarkRewriteCompliant(b *testing.B) {
	p := DefaultPolicy()
	compliant := make([]string, len(chatResponse))
	for i, line := range chatResponse {
		compliant[i], _ = Rewrite(line, p)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, line := range compliant {
			benchSink, _ = Rewrite(line, p)
		}
	}
}

func BenchmarkName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, line := range chatResponse {
			benchSink, _ = Name(line)
		}
	}
}

func BenchmarkSameSiteNoneIncompatible(b *testing.B) {
	ua := "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
	b.ReportAllocs()
	var sink bool
	for b.Loop() {
		sink = SameSiteNoneIncompatible(ua)
	}
	_ = sink
}

func BenchmarkRegistrableDomain(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		benchSink, _ = RegistrableDomain("chat.example.co.uk:443")
	}
}

// BenchmarkAppendRewriteChatResponse is the filter's path: the rewritten values go into one reused buffer.
func BenchmarkAppendRewriteChatResponse(b *testing.B) {
	p := DefaultPolicy()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for _, line := range chatResponse {
			buf, benchSink, _ = AppendRewrite(buf, line, p)
		}
	}
}
