package seal_test

import (
	"fmt"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/seal"
)

// The life of an affinity cookie: issued on a response, opened and checked on the next request, turned into the
// routing header Envoy's stateful session reads.
func Example() {
	// A demo key (32 bytes 0x00..0x1f); real keys come from a secret.
	keys, err := seal.ParseKeys([]string{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})
	if err != nil {
		panic(err)
	}
	sealer, err := seal.NewSealer(keys)
	if err != nil {
		panic(err)
	}

	issued := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	value, err := sealer.Seal(seal.Token{Upstream: "10.0.0.7:8080", Issued: issued, LastSeen: issued}, "chips_affinity")
	if err != nil {
		panic(err)
	}

	now := issued.Add(10 * time.Minute)
	tok, err := sealer.Open(value, "chips_affinity")
	fmt.Println(tok.Upstream, err)
	fmt.Println(tok.Validate(now, 30*time.Minute, 24*time.Hour), tok.NeedsRefresh(now, time.Minute))
	fmt.Println(affinity.EncodeRoutingValue(tok.Upstream))

	_, err = sealer.Open(value, "another_cookie")
	fmt.Println(err)
	// Output:
	// 10.0.0.7:8080 <nil>
	// <nil> true
	// MTAuMC4wLjc6ODA4MA==
	// affinity: token not authenticated by any key
}
