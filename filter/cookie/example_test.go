package cookie_test

import (
	"fmt"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/cookie"
)

func ExampleRewrite() {
	out, outcome := cookie.Rewrite("BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; HttpOnly; Path=/", cookie.DefaultPolicy())
	fmt.Println(outcome, out)

	_, outcome = cookie.Rewrite(out, cookie.DefaultPolicy())
	fmt.Println(outcome)
	// Output:
	// rewritten BAYEUX_BROWSER=533bkb4ydvsdrti9gz9zxs3fgfv; HttpOnly; Path=/; Secure; SameSite=None; Partitioned
	// compliant
}

func ExampleRewrite_sameSiteReplaced() {
	out, _ := cookie.Rewrite("JSESSIONID=abc; SameSite=Lax; Path=/chat", cookie.DefaultPolicy())
	fmt.Println(out)
	// Output: JSESSIONID=abc; SameSite=None; Path=/chat; Secure; Partitioned
}

func ExampleRegistrableDomain() {
	for _, authority := range []string{"chat.example.co.uk:443", "localhost:8080", "127.0.0.1"} {
		domain, ok := cookie.RegistrableDomain(authority)
		fmt.Printf("%s -> %q %v\n", authority, domain, ok)
	}
	// Output:
	// chat.example.co.uk:443 -> "example.co.uk" true
	// localhost:8080 -> "" false
	// 127.0.0.1 -> "" false
}

func ExampleStripSameSiteNone() {
	ua := "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1"
	out, _ := cookie.Rewrite("id=1", cookie.DefaultPolicy())
	if cookie.SameSiteNoneIncompatible(ua) {
		out, _ = cookie.StripSameSiteNone(out)
	}
	fmt.Println(out)
	// Output: id=1; Secure; Partitioned
}
