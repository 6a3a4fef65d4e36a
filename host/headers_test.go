package host

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func loaded(kind mapKind, h [][2]string) *headerMap {
	m := &headerMap{}
	m.reset(kind)
	m.load(h)
	m.begin()
	return m
}

func TestHeaderMapLoadNormalises(t *testing.T) {
	in := [][2]string{
		{"Host", "a.example"}, {":method", "GET"}, {"Set-Cookie", "a=1"}, {":path", "/"},
		{"Via", "1.1 one"}, {"set-cookie", "b=2"}, {"via", "1.1 two"},
	}
	m := loaded(kindRequestHeaders, in)
	want := [][2]string{
		{":authority", "a.example"}, {":method", "GET"}, {":path", "/"},
		{"set-cookie", "a=1"}, {"via", "1.1 one,1.1 two"}, {"set-cookie", "b=2"},
	}
	if !slices.Equal(m.pairs, want) {
		t.Errorf("loaded %q\nwant   %q", m.pairs, want)
	}
	if in[0][0] != "Host" {
		t.Error("load modified the caller's slice")
	}

	// Already-normal input is used as is, without a copy.
	norm := [][2]string{{":status", "200"}, {"set-cookie", "a"}, {"set-cookie", "b"}}
	m = loaded(kindResponseHeaders, norm)
	if m.cur != -1 || &m.pairs[0] != &norm[0] {
		t.Error("normal input was copied")
	}
	if got := m.export(); &got[0] != &norm[0] {
		t.Error("export of an unchanged map should return the caller's slice")
	}
}

func TestHeaderMapEnvoySemantics(t *testing.T) {
	m := loaded(kindResponseHeaders, [][2]string{{":status", "200"}, {"set-cookie", "a=1"}, {"via", "up"}, {"set-cookie", "b=2"}})

	m.add("set-cookie", "c=3") // repeated header: a new entry at the end
	m.add("via", "wasm")       // inline header: joined with ","
	m.add(":x", "p")           // pseudo-header: after the other pseudo-headers
	m.add("location", "")      // inline header, absent: a new entry
	m.add("location", "/x")    // inline header with an empty value: takes the value, no leading ","
	m.add("location", "")      // adding nothing to an inline header changes nothing
	want := [][2]string{
		{":status", "200"}, {":x", "p"}, {"set-cookie", "a=1"}, {"via", "up,wasm"}, {"set-cookie", "b=2"},
		{"set-cookie", "c=3"}, {"location", "/x"},
	}
	if !slices.Equal(m.pairs, want) {
		t.Fatalf("after adds %q\nwant       %q", m.pairs, want)
	}
	if v, _ := m.get("set-cookie"); v != "a=1" {
		t.Errorf("get returns the first value, got %q", v)
	}
	if v, _ := m.joined("set-cookie"); v != "a=1,b=2,c=3" {
		t.Errorf("joined = %q", v)
	}

	m.replace("set-cookie", "only=1") // all entries removed, the new one at the end
	want = [][2]string{{":status", "200"}, {":x", "p"}, {"via", "up,wasm"}, {"location", "/x"}, {"set-cookie", "only=1"}}
	if !slices.Equal(m.pairs, want) {
		t.Fatalf("after replace %q\nwant          %q", m.pairs, want)
	}
	m.remove("via")
	m.remove("absent")
	if _, ok := m.get("via"); ok || len(m.pairs) != 4 {
		t.Errorf("after remove %q", m.pairs)
	}
	if m.byteSize() != len(":status200:xplocation/xset-cookieonly=1") {
		t.Errorf("byteSize = %d", m.byteSize())
	}

	m.setPairs([][2]string{{"X-A", "1"}, {":status", "204"}, {"Date", "d1"}, {"date", "d2"}})
	want = [][2]string{{":status", "204"}, {"x-a", "1"}, {"date", "d1,d2"}}
	if !slices.Equal(m.pairs, want) {
		t.Errorf("after setPairs %q\nwant           %q", m.pairs, want)
	}
}

func TestHeaderMapHostAlias(t *testing.T) {
	m := loaded(kindRequestHeaders, reqHeaders("/"))
	if v, ok := m.lookupKey([]byte("Host")); !ok || v != "a.example" {
		t.Errorf("host = %q, %v", v, ok)
	}
	m.add(keyName(kindRequestHeaders, []byte("HOST")), "b.example")
	if v, _ := m.get(":authority"); v != "a.example,b.example" {
		t.Errorf(":authority = %q", v)
	}
	if _, ok := m.get("host"); ok {
		t.Error("a host entry was created")
	}
	// Only request maps know the alias.
	r := loaded(kindResponseHeaders, respHeaders([2]string{"host", "h"}))
	if v, ok := r.lookupKey([]byte("host")); !ok || v != "h" {
		t.Errorf("response host = %q, %v", v, ok)
	}
}

func TestHeaderMapRollback(t *testing.T) {
	in := respHeaders([2]string{"set-cookie", "a=1"})
	m := loaded(kindResponseHeaders, in)
	m.add("x", "1")
	m.begin() // a new callback starts from the state the last one left
	m.add("y", "2")
	m.remove("set-cookie")
	m.rollback()
	want := [][2]string{{":status", "200"}, {"set-cookie", "a=1"}, {"x", "1"}}
	if !slices.Equal(m.pairs, want) {
		t.Errorf("after rollback %q, want %q", m.pairs, want)
	}
	if !slices.Equal(in, respHeaders([2]string{"set-cookie", "a=1"})) {
		t.Errorf("caller slice changed: %q", in)
	}
	// The pre-callback contents survive any number of writes in the failed callback.
	m.begin()
	for i := 0; i < 100; i++ {
		m.add("z", "v")
	}
	m.rollback()
	if !slices.Equal(m.pairs, want) {
		t.Errorf("after rollback of many writes %q", m.pairs)
	}
}

func TestPairsSerialization(t *testing.T) {
	pairs := [][2]string{{"a", "1"}, {"b", "22"}}
	b := serialize(pairs)
	// The spec's own example: {{"a","1"},{"b","22"}}.
	want := []byte{2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 'a', 0, '1', 0, 'b', 0, '2', '2', 0}
	if !slices.Equal(b, want) {
		t.Errorf("serialized % x\nwant       % x", b, want)
	}
	if got := parsePairs(nil, b); !slices.Equal(got, pairs) {
		t.Errorf("parsed %q", got)
	}
	empty := serialize(nil)
	if got := parsePairs(nil, empty); len(got) != 0 {
		t.Errorf("empty map parsed as %q", got)
	}
	malformed := map[string][]byte{
		"short":              {1, 0},
		"count too big":      {9, 0, 0, 0},
		"missing NUL":        {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 'x', '1', 0},
		"trailing bytes":     append(serialize(pairs), 0),
		"sizes past the end": {1, 0, 0, 0, 200, 0, 0, 0, 1, 0, 0, 0, 'a', 0, '1', 0},
	}
	for name, b := range malformed {
		if got := parsePairs(nil, b); len(got) != 0 {
			t.Errorf("%s: parsed %q, want empty", name, got)
		}
	}
}

func FuzzParsePairs(f *testing.F) {
	f.Add(serialize([][2]string{{"a", "1"}, {"set-cookie", "x=y; Path=/"}}))
	f.Add([]byte{1, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs := parsePairs(nil, b)
		if len(pairs) > 0 {
			if again := parsePairs(nil, serialize(pairs)); !slices.Equal(again, pairs) {
				t.Fatalf("round trip changed %q to %q", pairs, again)
			}
		}
	})
}

// Inline headers are tracked in a 64-bit set while loading: each map kind must number its inline headers uniquely
// and below 64.
func TestInlineIndexes(t *testing.T) {
	names := []string{
		":authority", ":method", ":path", ":protocol", ":scheme", ":status", "expect", "grpc-timeout", "te",
		"user-agent", "referer", "x-client-trace-id", "x-forwarded-client-cert", "x-forwarded-for",
		"x-forwarded-host", "x-forwarded-proto", "x-envoy-downstream-service-cluster",
		"x-envoy-downstream-service-node", "x-envoy-external-address", "x-envoy-force-trace",
		"x-envoy-hedge-on-per-try-timeout", "x-envoy-internal", "x-envoy-ip-tags", "x-envoy-retry-on",
		"x-envoy-retry-grpc-on", "x-envoy-retriable-status-codes", "x-envoy-retriable-header-names",
		"x-envoy-original-path", "x-envoy-original-url", "x-envoy-upstream-alt-stat-name",
		"x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms", "x-envoy-max-retries",
		"x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms",
		"x-envoy-upstream-stream-duration-ms", "date", "location", "server", "grpc-status", "grpc-message",
		"x-envoy-degraded", "x-envoy-immediate-health-check-fail", "x-envoy-ratelimited", "x-envoy-upstream-canary",
		"x-envoy-upstream-healthchecked-cluster", "x-envoy-upstream-service-time", "connection", "content-length",
		"content-type", "keep-alive", "proxy-connection", "proxy-status", "transfer-encoding", "upgrade", "via",
		"x-request-id", "x-envoy-attempt-count", "x-envoy-decorator-operation",
		"set-cookie", "cookie", "cache-control", "host",
	}
	for _, kind := range []mapKind{kindRequestHeaders, kindResponseHeaders, kindRequestTrailers, kindResponseTrailers} {
		used := map[int]string{}
		for _, n := range names {
			i := inlineIndex(kind, n)
			if i < 0 {
				continue
			}
			if i >= 64 {
				t.Errorf("kind %d: %s has index %d", kind, n, i)
			}
			if other, ok := used[i]; ok {
				t.Errorf("kind %d: %s and %s share index %d", kind, n, other, i)
			}
			used[i] = n
		}
	}
	for _, n := range []string{"set-cookie", "cookie", "cache-control", "host"} {
		if isInline(kindRequestHeaders, n) || isInline(kindResponseHeaders, n) {
			t.Errorf("%s must not be inline: Envoy keeps one entry per occurrence", n)
		}
	}
	if isInline(kindResponseHeaders, ":path") || isInline(kindRequestHeaders, ":status") {
		t.Error("inline sets of requests and responses are mixed up")
	}
}

// Header names the plugin passes in any case are stored lowercase; the common ones come from a table, without
// allocating.
func TestKeyName(t *testing.T) {
	for in, want := range map[string]string{
		"Set-Cookie": "set-cookie", "set-cookie": "set-cookie", "CONTENT-TYPE": "content-type", ":Status": ":status",
		"X-Custom": "x-custom", "x-set-cookie": "x-set-cookie", "set-cookie2": "set-cookie2", "": "",
	} {
		if got := keyName(kindResponseHeaders, []byte(in)); got != want {
			t.Errorf("keyName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := keyName(kindRequestHeaders, []byte("Host")); got != ":authority" {
		t.Errorf("request Host = %q", got)
	}
	key := []byte("Set-Cookie")
	if n := testing.AllocsPerRun(100, func() { _ = keyName(kindResponseHeaders, key) }); n != 0 {
		t.Errorf("keyName(Set-Cookie) allocates %v times", n)
	}
}

// hasUpper's eight-bytes-at-a-time test agrees with a byte-by-byte one on every byte value at every position of
// names from 1 to 24 bytes.
func TestHasUpperEveryByte(t *testing.T) {
	byteByByte := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if 'A' <= s[i] && s[i] <= 'Z' {
				return true
			}
		}
		return false
	}
	for n := 1; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("x-\xff", n)[:n])
				b[pos] = byte(c)
				if got, want := hasUpper(string(b)), byteByByte(string(b)); got != want {
					t.Fatalf("hasUpper(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

// The hashed lookup finds every declared inline name of a kind at its position, and nothing else: no name of
// another kind, no name in another case, no prefix or extension of a declared name.
func TestInlineIndexFindsExactlyTheDeclaredNames(t *testing.T) {
	longest := 0
	for kind, names := range inlineNames {
		declared := map[string]int{}
		for i, n := range names {
			declared[n] = i
			longest = max(longest, len(n))
		}
		for k := range inlineNames {
			for _, n := range append(inlineNames[k], repeatedNames...) {
				want, ok := declared[n]
				if !ok {
					want = -1
				}
				if got := inlineIndex(mapKind(kind), n); got != want {
					t.Errorf("kind %d: inlineIndex(%q) = %d, want %d", kind, n, got, want)
				}
				for _, other := range []string{strings.ToUpper(n), n[:len(n)-1], n + "s", "x" + n[1:], n[:len(n)-1] + "x"} {
					if _, ok := declared[other]; ok {
						continue
					}
					if got := inlineIndex(mapKind(kind), other); got != -1 {
						t.Errorf("kind %d: inlineIndex(%q) = %d, want -1", kind, other, got)
					}
				}
			}
		}
	}
	if longest != maxInlineLen {
		t.Errorf("the longest inline name has %d bytes, maxInlineLen is %d", longest, maxInlineLen)
	}
}

// normalised, which tracks inline headers by hash slot, agrees with a plain check by name on random lists drawn
// from every inline name, the repeated regular ones, names that share a slot with an inline name without being
// one, the request's "host", capitals and misplaced pseudo-headers.
func TestNormalisedAgreesWithACheckByName(t *testing.T) {
	byName := func(kind mapKind, h [][2]string) bool {
		seen, regular := map[string]bool{}, false
		for _, p := range h {
			name := p[0]
			if strings.ToLower(name) != name || kind == kindRequestHeaders && name == "host" {
				return false
			}
			if strings.HasPrefix(name, ":") {
				if regular {
					return false
				}
			} else {
				regular = true
			}
			if isInline(kind, name) {
				if seen[name] {
					return false
				}
				seen[name] = true
			}
		}
		return true
	}
	rng := rand.New(rand.NewPCG(11, 26))
	for _, kind := range []mapKind{kindRequestHeaders, kindResponseHeaders, kindRequestTrailers, kindResponseTrailers} {
		set := &inlineSets[kind]
		var pool []string
		for _, names := range inlineNames {
			pool = append(pool, names...)
		}
		pool = append(pool, repeatedNames...)
		pool = append(pool, "host", "Set-Cookie", "X-Request-Id", "", "a", ":unknown")
		sharing := 0
		for i := 0; sharing < 8 && i < 100000 && len(set.names) > 0; i++ {
			name := fmt.Sprintf("x-h-%d", i)
			if slot := inlineSlot(name, set.mul); set.slots[slot] != 0 {
				pool = append(pool, name)
				sharing++
			}
		}
		if len(set.names) > 0 && sharing < 8 {
			t.Fatalf("kind %d: found %d names sharing an inline slot", kind, sharing)
		}
		found := [2]int{}
		for range 20000 {
			h := make([][2]string, rng.IntN(14))
			for i := range h {
				h[i][0] = pool[rng.IntN(len(pool))]
			}
			// Pseudo-headers first most of the time, so that the inline checks are reached.
			slices.SortStableFunc(h, func(a, b [2]string) int {
				return cmpBool(!isPseudo(a[0]), !isPseudo(b[0]))
			})
			if rng.IntN(4) == 0 {
				rng.Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] })
			}
			m := &headerMap{kind: kind}
			want := byName(kind, h)
			if got := m.normalised(h); got != want {
				t.Fatalf("kind %d: normalised(%q) = %v, a check by name says %v", kind, h, got, want)
			}
			if want {
				found[1]++
			} else {
				found[0]++
			}
		}
		if found[0] < 1000 || found[1] < 1000 {
			t.Errorf("kind %d: %d lists not normalised and %d normalised; both need exercising", kind, found[0], found[1])
		}
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
