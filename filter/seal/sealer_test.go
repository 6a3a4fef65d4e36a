package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const cookieName = "chips_affinity"

// Fixed test keys: the golden tokens below and the fuzz corpus were sealed with them.
var (
	keyA = seqKey(0x00)
	keyB = seqKey(0xa0)
	keyC = seqKey(0x40)
)

func seqKey(first byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = first + byte(i)
	}
	return k
}

func mustSealer(t testing.TB, keys ...[]byte) *Sealer {
	t.Helper()
	s, err := NewSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSeal(t testing.TB, s *Sealer, tok Token, aad string) string {
	t.Helper()
	v, err := s.Seal(tok, aad)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var (
	jan1        = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sample      = Token{Upstream: "10.0.0.7:8080", Issued: jan1, LastSeen: jan1.Add(time.Hour)}
	ipv6Sample  = Token{Upstream: "[2001:db8::1]:443", Issued: jan1, LastSeen: jan1}
	localSample = Token{Upstream: "[::1]:8080", Issued: jan1, LastSeen: jan1}
)

// goldenTokens were sealed by this format's first implementation; they must keep opening, or every deployed
// cookie would be rejected after an upgrade. They also seed FuzzOpen, which needs genuine values that stay the
// same from run to run.
var goldenTokens = []struct {
	key   []byte
	name  string // the cookie name it was sealed for
	value string
	want  Token
}{
	{keyA, cookieName, "AWMNzSlrPCze7FVYi4s9Sz63HyrihC9pOx0T0uAJNDmVaOdSf7rlpQzAnFTSSvnv834TfFSufs890GbnHDg", sample},
	{keyA, cookieName, "AWMNzSlo55DpEilmfIbzmdUrayjtOwRClX6OaxmEOiFQ9I3_TCAm__imOmR0IQTX_NFkQ9xcKSwpQnSnJw7IHfRA", ipv6Sample},
	{keyB, cookieName, "AQDpiGdWIM5kYJPl4CZDlPCGtpsg7QHTvYAk69TngvhfzXVxEfuEEFa5AdG_Wm6PjJzFNYbj70lo5nNns-Q", sample},
	{keyB, cookieName, "AQDpiGdC34a4XaZ3wJg8f0FOFGyETEgT92g9oRjNB18KXZPRlOs1RBwDU4rneWTe8qX9xn9WrFMvUfPGx65tWOX3", ipv6Sample},
	{keyA, "", "AWMNzSm-RPzJ93rAesV2PM5uGo5OVJ8G2WZEaDPIsn1ttEyRuee1i-VbK0Dn23EJuySrWuC-hi0A9Vtv-qU", sample},
	{keyA, "", "AWMNzSmnl0GDekLhRPWLK3UINKiBnPed_qhEgp-_zweLPHp1yEFRX0EdzCyCtpWVWA5_z1BZpSjcWIY", localSample},
}

func TestGoldenTokens(t *testing.T) {
	s := mustSealer(t, keyC, keyB, keyA)
	for _, g := range goldenTokens {
		got, err := s.Open(g.value, g.name)
		if err != nil {
			t.Fatalf("Open(%q) = %v", g.value, err)
		}
		if !reflect.DeepEqual(got, g.want) {
			t.Errorf("Open(%q) = %+v, want %+v", g.value, got, g.want)
		}
	}
}

func TestNewSealerErrors(t *testing.T) {
	tests := []struct {
		keys [][]byte
		want string
	}{
		{nil, "affinity: no keys"},
		{[][]byte{}, "affinity: no keys"},
		{[][]byte{keyA, make([]byte, 16)}, "affinity: key 1: want 32 bytes, got 16"},
		{[][]byte{make([]byte, 33)}, "affinity: key 0: want 32 bytes, got 33"},
		{[][]byte{keyA, keyB, nil}, "affinity: key 2: want 32 bytes, got 0"},
	}
	for _, tt := range tests {
		_, err := NewSealer(tt.keys)
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewSealer(%d keys) error = %v, want %q", len(tt.keys), err, tt.want)
		}
	}
}

func TestParseKeys(t *testing.T) {
	// 0xfb 0xfb 0xfb encodes as "+/v7" (standard) and "-_v7" (URL-safe), so both alphabets are really exercised.
	keyB := bytes.Repeat([]byte{0xfb}, 32)
	spellings := map[string]string{
		"std padded": base64.StdEncoding.EncodeToString(keyB),
		"std raw":    base64.RawStdEncoding.EncodeToString(keyB),
		"url padded": base64.URLEncoding.EncodeToString(keyB),
		"url raw":    base64.RawURLEncoding.EncodeToString(keyB),
		"spaces":     "  " + base64.StdEncoding.EncodeToString(keyB) + " ",
	}
	if spellings["std raw"] == spellings["url raw"] {
		t.Fatal("test key does not distinguish the alphabets")
	}
	for name, s := range spellings {
		got, err := ParseKeys([]string{base64.StdEncoding.EncodeToString(keyA), s})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, [][]byte{keyA, keyB}) {
			t.Errorf("%s: got %x", name, got)
		}
	}
}

func TestParseKeysErrors(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(keyA)
	tests := []struct {
		list []string
		want string
	}{
		{nil, "affinity: no keys"},
		{[]string{good, base64.StdEncoding.EncodeToString(make([]byte, 16))}, "affinity: key 1: want 32 bytes, got 16"},
		{[]string{good, good, "not*base64"}, "affinity: key 2: not base64"},
		{[]string{" "}, "affinity: key 0: empty"},
		{[]string{good + "=="}, "affinity: key 0: not base64"},
	}
	for _, tt := range tests {
		_, err := ParseKeys(tt.list)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseKeys(%q) error = %v, want prefix %q", tt.list, err, tt.want)
		}
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := mustSealer(t, keyA)
	tests := []struct {
		name string
		tok  Token
		aad  string
		want Token // when the token does not survive unchanged
	}{
		{name: "ipv4", tok: sample, aad: cookieName},
		{name: "ipv6", tok: Token{Upstream: "[::1]:8080", Issued: jan1, LastSeen: jan1}, aad: cookieName},
		{name: "empty cookie name", tok: sample, aad: ""},
		{name: "longest upstream", tok: Token{Upstream: strings.Repeat("x", MaxUpstreamLen), Issued: jan1, LastSeen: jan1}, aad: cookieName},
		{name: "before 1970", tok: Token{Upstream: "1.1.1.1:1", Issued: time.Unix(-86400, 0).UTC(), LastSeen: time.Unix(-1, 0).UTC()}, aad: cookieName},
		{
			name: "sub-second and zone dropped",
			tok:  Token{Upstream: "1.1.1.1:1", Issued: jan1.Add(999 * time.Millisecond).In(time.FixedZone("X", 3600)), LastSeen: jan1.Add(1500 * time.Millisecond)},
			aad:  cookieName,
			want: Token{Upstream: "1.1.1.1:1", Issued: jan1, LastSeen: jan1.Add(time.Second)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want.Upstream == "" {
				want = tt.tok
			}
			v := mustSeal(t, s, tt.tok, tt.aad)
			got, err := s.Open(v, tt.aad)
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Open = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSealErrors(t *testing.T) {
	s := mustSealer(t, keyA)
	for _, up := range []string{"", strings.Repeat("x", MaxUpstreamLen+1)} {
		if v, err := s.Seal(Token{Upstream: up, Issued: jan1, LastSeen: jan1}, cookieName); err == nil {
			t.Errorf("Seal(upstream of %d bytes) = %q, want an error", len(up), v)
		}
	}
}

func TestSealedValueIsCookieSafe(t *testing.T) {
	s := mustSealer(t, keyA)
	seen := map[string]bool{}
	for i := range 50 {
		v := mustSeal(t, s, sample, cookieName)
		if seen[v] {
			t.Fatalf("seal %d repeated an earlier value: nonces are not random", i)
		}
		seen[v] = true
		for _, c := range []byte(v) {
			ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
			if !ok {
				t.Fatalf("value %q holds %q, not cookie-safe", v, c)
			}
		}
	}
	// 17 header+nonce, 16 times, 13 upstream, 16 tag = 62 bytes, 83 characters.
	if v := mustSeal(t, s, sample, cookieName); len(v) != 83 {
		t.Errorf("len(value) = %d, want 83", len(v))
	}
}

func TestRotation(t *testing.T) {
	old := mustSealer(t, keyA)
	rotating := mustSealer(t, keyB, keyA) // new key first, old still accepted
	retired := mustSealer(t, keyB)        // old key dropped

	oldValue := mustSeal(t, old, sample, cookieName)
	if got, err := rotating.Open(oldValue, cookieName); err != nil || !reflect.DeepEqual(got, sample) {
		t.Errorf("rotating.Open(old token) = %+v, %v; want it to open", got, err)
	}
	if _, err := retired.Open(oldValue, cookieName); err != ErrTampered {
		t.Errorf("retired.Open(old token) = %v, want ErrTampered", err)
	}

	newValue := mustSeal(t, rotating, sample, cookieName)
	if _, err := old.Open(newValue, cookieName); err != ErrTampered {
		t.Errorf("old.Open(token sealed with new first key) = %v, want ErrTampered", err)
	}
	for name, s := range map[string]*Sealer{"rotating": rotating, "retired": retired} {
		if got, err := s.Open(newValue, cookieName); err != nil || !reflect.DeepEqual(got, sample) {
			t.Errorf("%s.Open(new token) = %+v, %v; want it to open", name, got, err)
		}
	}
}

// Two keys whose ids collide must both keep working: Open tries each key with the id, and a failed attempt must
// not spoil the ciphertext for the next.
func TestKeyIDCollision(t *testing.T) {
	s := mustSealer(t, keyA, keyB)
	s.keys[1].id = s.keys[0].id
	sealerB := mustSealer(t, keyB)
	sealerB.keys[0].id = s.keys[0].id

	for name, sealer := range map[string]*Sealer{"first key": s, "second key": sealerB} {
		v := mustSeal(t, sealer, sample, cookieName)
		if got, err := s.Open(v, cookieName); err != nil || !reflect.DeepEqual(got, sample) {
			t.Errorf("%s: Open = %+v, %v; want it to open", name, got, err)
		}
	}
}

// reencode applies f to the decoded bytes of a sealed value and encodes the result again.
func reencode(t *testing.T, v string, f func([]byte) []byte) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(f(raw))
}

func TestOpenRejects(t *testing.T) {
	s := mustSealer(t, keyA)
	v := goldenTokens[1].value // holds both '-'/'_' candidates and a non-aligned length
	tests := []struct {
		name  string
		value string
		aad   string
		want  error
	}{
		{"empty", "", cookieName, ErrMalformed},
		{"not base64", strings.Repeat("!", len(v)), cookieName, ErrMalformed},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(v), cookieName, ErrMalformed},
		{"padded", v + "=", cookieName, ErrMalformed},
		{"newline inside", v[:20] + "\n" + v[20:], cookieName, ErrMalformed},
		{"carriage return at end", v[:len(v)-1] + "\r" + v[len(v)-1:], cookieName, ErrMalformed},
		{"last character dropped", v[:len(v)-1], cookieName, ErrMalformed},
		{"last byte dropped", reencode(t, v, func(b []byte) []byte { return b[:len(b)-1] }), cookieName, ErrTampered},
		{"tag dropped", reencode(t, v, func(b []byte) []byte { return b[:len(b)-tagLen] }), cookieName, ErrTampered},
		{"header only", v[:7], cookieName, ErrMalformed},
		{"below minimum", v[:minValueLen-1], cookieName, ErrMalformed},
		{"above maximum", strings.Repeat("A", maxValueLen+1), cookieName, ErrMalformed},
		{"extra byte", reencode(t, v, func(b []byte) []byte { return append(b, 0) }), cookieName, ErrTampered},
		{"version 2", reencode(t, v, func(b []byte) []byte { b[0] = 2; return b }), cookieName, ErrMalformed},
		{"version 0", reencode(t, v, func(b []byte) []byte { b[0] = 0; return b }), cookieName, ErrMalformed},
		{"unknown key id", reencode(t, v, func(b []byte) []byte { b[1] ^= 0xff; return b }), cookieName, ErrTampered},
		{"another cookie name", v, "other_cookie", ErrTampered},
		{"cookie name case", v, "CHIPS_AFFINITY", ErrTampered},
		{"cookie name prefix", v, "chips_affinit", ErrTampered},
		{"unknown key", goldenTokens[3].value, cookieName, ErrTampered},
		{"all zero", strings.Repeat("A", len(v)), cookieName, ErrMalformed},
		{"right header, zero body", v[:7] + strings.Repeat("A", len(v)-7), cookieName, ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Open(tt.value, tt.aad)
			if err != tt.want {
				t.Errorf("Open = %+v, %v; want %v", got, err, tt.want)
			}
			if err != nil && !reflect.DeepEqual(got, Token{}) {
				t.Errorf("failed Open returned a non-zero token %+v", got)
			}
		})
	}
}

// TestEveryBitFlip flips each bit of a sealed token, in its bytes and in its text: nothing may open.
func TestEveryBitFlip(t *testing.T) {
	s := mustSealer(t, keyA, keyB)
	for _, v := range []string{mustSeal(t, s, sample, cookieName), goldenTokens[1].value} {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		for i := range raw {
			for bit := range 8 {
				b := append([]byte(nil), raw...)
				b[i] ^= 1 << bit
				flipped := base64.RawURLEncoding.EncodeToString(b)
				if _, err := s.Open(flipped, cookieName); err != ErrTampered && err != ErrMalformed {
					t.Errorf("byte %d bit %d flipped: Open error = %v", i, bit, err)
				}
			}
		}
		for i := range len(v) {
			for bit := range 8 {
				b := []byte(v)
				b[i] ^= 1 << bit
				if _, err := s.Open(string(b), cookieName); err != ErrTampered && err != ErrMalformed {
					t.Errorf("char %d bit %d flipped (%q): Open error = %v", i, bit, b[i], err)
				}
			}
		}
	}
}

func TestOpenErrorsAreSentinels(t *testing.T) {
	s := mustSealer(t, keyA)
	for _, v := range []string{"", "garbage", goldenTokens[3].value} {
		_, err := s.Open(v, cookieName)
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTampered) {
			t.Errorf("Open(%q) = %v, want one of the sentinels", v, err)
		}
	}
}

// TestConcurrentUse shares one Sealer between goroutines, as the host's worker pool may; run it with -race.
func TestConcurrentUse(t *testing.T) {
	s := mustSealer(t, keyA, keyB)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			tok := Token{Upstream: "10.0.0." + string(rune('0'+g)) + ":80", Issued: jan1, LastSeen: jan1}
			for range 100 {
				v, err := s.Seal(tok, cookieName)
				if err != nil {
					errs <- err
					return
				}
				got, err := s.Open(v, cookieName)
				if err != nil || got != tok {
					errs <- errors.New("round trip failed: " + got.Upstream)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestOpenCache checks that remembering authenticated values changes no answer and stays bounded.
func TestOpenCache(t *testing.T) {
	s := mustSealer(t, keyA)
	v := mustSeal(t, s, sample, cookieName)
	for i := range 3 {
		if got, err := s.Open(v, cookieName); err != nil || !reflect.DeepEqual(got, sample) {
			t.Fatalf("Open #%d = %+v, %v", i, got, err)
		}
	}
	// A cached value presented under another cookie name is still bound to its own.
	if _, err := s.Open(v, "other_cookie"); err != ErrTampered {
		t.Errorf("cached value under another name: Open = %v, want ErrTampered", err)
	}
	if got, err := s.Open(v, cookieName); err != nil || !reflect.DeepEqual(got, sample) {
		t.Errorf("Open after a failed attempt = %+v, %v", got, err)
	}

	// Failures are never remembered.
	fresh := mustSealer(t, keyA)
	for _, bad := range []string{goldenTokens[3].value, otherMiddleChar(v), strings.Repeat("A", len(v))} {
		fresh.Open(bad, cookieName)
	}
	if n := len(fresh.cache); n != 0 {
		t.Errorf("cache holds %d entries after failed opens, want 0", n)
	}

	// Bounded: far more distinct genuine values than the cache holds.
	for i := range 3 * openCacheSize {
		tok := sample
		tok.Issued = jan1.Add(time.Duration(i) * time.Second)
		w := mustSeal(t, fresh, tok, cookieName)
		if got, err := fresh.Open(w, cookieName); err != nil || !reflect.DeepEqual(got, tok) {
			t.Fatalf("Open #%d = %+v, %v", i, got, err)
		}
		if n := len(fresh.cache); n > openCacheSize {
			t.Fatalf("cache holds %d entries, bound is %d", n, openCacheSize)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	s := mustSealer(b, keyA, keyB)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(sample, cookieName); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures the steady state: a client presenting the value it was last given.
func BenchmarkOpen(b *testing.B) {
	s := mustSealer(b, keyA, keyB)
	v := mustSeal(b, s, sample, cookieName)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(v, cookieName); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenUncached measures authenticating a value not seen before: the first request after each refresh.
func BenchmarkOpenUncached(b *testing.B) {
	s := mustSealer(b, keyA, keyB)
	v := mustSeal(b, s, sample, cookieName)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.open(v, cookieName); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenRejected measures the cost of a cookie sealed with a key that is not configured.
func BenchmarkOpenRejected(b *testing.B) {
	s := mustSealer(b, keyA, keyB)
	v := mustSeal(b, mustSealer(b, keyC), sample, cookieName)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(v, cookieName); err != ErrTampered {
			b.Fatal(err)
		}
	}
}

// Nonces come from a pool refilled noncesPerRead at a time: none may repeat, within a fill or across fills.
func TestNoncesNeverRepeatAcrossPoolRefills(t *testing.T) {
	s := mustSealer(t, keyA)
	seen := map[string]int{}
	for i := range 3*noncesPerRead + 1 {
		raw, err := valueEncoding.DecodeString(mustSeal(t, s, sample, cookieName))
		if err != nil {
			t.Fatal(err)
		}
		nonce := string(raw[headerLen:prefixLen])
		if j, ok := seen[nonce]; ok {
			t.Fatalf("seal %d reused the nonce of seal %d", i, j)
		}
		seen[nonce] = i
	}
}

// otherMiddleChar returns v with its middle character replaced by another. A middle character carries six bits of
// the token, so the result always decodes to other bytes; the last one of an unpadded value may carry only two, and
// replacing it can leave the token as it was.
func otherMiddleChar(v string) string {
	i := len(v) / 2
	c := byte('A')
	if v[i] == c {
		c = 'B'
	}
	return v[:i] + string(c) + v[i+1:]
}
