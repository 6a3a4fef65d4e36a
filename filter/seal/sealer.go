package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Token format, version 1. The cookie value is the unpadded URL-safe base64 (RFC 4648 §5) of:
//
//	offset  size      field
//	0       1         version, 0x01
//	1       4         key id: the first 4 bytes of SHA-256 of the sealing key
//	5       12        nonce, random per token
//	17      m         ciphertext of the payload below (AES-256-GCM), m = 16 + len(upstream)
//	17+m    16        GCM tag
//
// Payload (plaintext, m bytes):
//
//	0       8         issued, Unix seconds, big-endian two's complement
//	8       8         last seen, Unix seconds, big-endian two's complement
//	16      1..255    upstream address bytes ("ip:port")
//
// The additional authenticated data is the 5-byte header (version, key id) followed by the cookie name: a token
// cannot be replayed under another cookie name, and neither header byte can be altered unnoticed.
//
// The URL-safe alphabet without padding needs no quoting in a cookie (no '=', ';', ',', '"', space or '\').
//
// Why a key id rather than trying every key: the common case (token sealed with the current key) costs exactly one
// AES-GCM open however many old keys are kept for rotation, and a junk cookie whose id matches no key is rejected
// before any decryption. Four bytes of a hash reveal nothing useful about a 256-bit random key. Two keys sharing an
// id (chance 2^-32 per pair) still work: every key with the id is tried.
const (
	version1  = 0x01
	keyIDLen  = 4
	headerLen = 1 + keyIDLen
	nonceLen  = 12
	tagLen    = 16
	stampsLen = 16
	prefixLen = headerLen + nonceLen
	minRawLen = prefixLen + stampsLen + 1 + tagLen
	maxRawLen = prefixLen + stampsLen + MaxUpstreamLen + tagLen
	keyLen    = 32
)

// MaxUpstreamLen bounds Token.Upstream: far above any "[IPv6]:port" (at most 47 bytes), and it keeps the cookie
// (at most 406 characters of value) well inside browsers' 4096-byte limit.
const MaxUpstreamLen = 255

// The encoded lengths a version-1 value can have; anything outside is rejected before decoding.
var (
	minValueLen = valueEncoding.EncodedLen(minRawLen)
	maxValueLen = valueEncoding.EncodedLen(maxRawLen)
)

// valueEncoding is strict so that every token has exactly one spelling: a lenient decoder accepts non-zero
// trailing bits, and an altered last character would then still open.
var valueEncoding = base64.RawURLEncoding.Strict()

type sealKey struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

// Sealer seals and opens tokens. The first key seals; every key opens, so keys rotate without logging anybody
// out: add the new key second, deploy, move it first, deploy, and drop the old key once max_life has passed.
// A Sealer is safe for concurrent use; its keys never change (a new key list means a new Sealer).
type Sealer struct {
	keys  []sealKey
	mu    sync.Mutex
	cache map[string]cachedToken // recently authenticated values, at most openCacheSize
	// nonces holds random bytes not yet used, read noncesPerRead nonces at a time; next is the offset of the
	// first unused one. Guarded by mu.
	nonces [noncesPerRead * nonceLen]byte
	next   int
}

// noncesPerRead is how many nonces one read of the system's random source provides. Inside the filter that read
// is a host call (WASI random_get), which costs far more than the bytes it returns; a token seals one nonce. Each
// byte is handed out once and never reused, so the nonces are exactly as random as reading them one at a time.
const noncesPerRead = 32

// openCacheSize bounds the cache of authenticated values (a few hundred bytes an entry, so a few hundred KiB per
// VM at most).
//
// Why a cache: inside the filter, AES-GCM runs in software (wasm has no AES or carry-less multiply instructions),
// and authenticating a token takes 5-10 µs under wazero against well under 1 µs for a cache hit, on a path every
// request with the cookie takes. A browser sends the very same value on every request until the token is
// refreshed (by default once a minute), so nearly every Open is a value already authenticated by this Sealer.
// The cache keeps only values that authenticated, keyed by the exact value and checked against the cookie name,
// so it can never make Open accept anything the keys would reject.
const openCacheSize = 1024

type cachedToken struct {
	aad string
	tok Token
}

// NewSealer returns a Sealer for keys, each exactly 32 bytes (AES-256), at least one.
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("affinity: no keys")
	}
	s := &Sealer{keys: make([]sealKey, len(keys)), cache: make(map[string]cachedToken)}
	for i, k := range keys {
		if len(k) != keyLen {
			return nil, fmt.Errorf("affinity: key %d: want %d bytes, got %d", i, keyLen, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("affinity: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("affinity: key %d: %w", i, err)
		}
		sum := sha256.Sum256(k)
		copy(s.keys[i].id[:], sum[:keyIDLen])
		s.keys[i].aead = aead
	}
	return s, nil
}

// Seal returns the cookie value holding t, bound to the cookie name aad. Times are truncated to the second.
//
// Nonces are random, so one key should seal fewer than 2^32 tokens (NIST SP 800-38D): at a thousand new or
// refreshed cookies a second that is over a century, and keys rotate long before.
func (s *Sealer) Seal(t Token, aad string) (string, error) {
	if t.Upstream == "" {
		return "", errors.New("affinity: seal: empty upstream")
	}
	if len(t.Upstream) > MaxUpstreamLen {
		return "", fmt.Errorf("affinity: seal: upstream is %d bytes, at most %d", len(t.Upstream), MaxUpstreamLen)
	}
	k := &s.keys[0]
	n := stampsLen + len(t.Upstream)
	// One array holds the raw token, the additional data and the encoded value the string returned aliases:
	// inside the filter each allocation costs a few hundred nanoseconds.
	rawLen := prefixLen + n + tagLen
	buf := make([]byte, rawLen+headerLen+len(aad)+valueEncoding.EncodedLen(rawLen))
	raw, rest := buf[:rawLen:rawLen], buf[rawLen:]
	raw[0] = version1
	copy(raw[1:headerLen], k.id[:])
	nonce := raw[headerLen:prefixLen]
	if err := s.nonce(nonce); err != nil {
		return "", fmt.Errorf("affinity: seal: nonce: %w", err)
	}
	plain := raw[prefixLen : prefixLen+n]
	binary.BigEndian.PutUint64(plain[0:8], uint64(t.Issued.Unix()))
	binary.BigEndian.PutUint64(plain[8:16], uint64(t.LastSeen.Unix()))
	copy(plain[stampsLen:], t.Upstream)
	ad := appendAdditionalData(rest[:0:headerLen+len(aad)], raw[:headerLen], aad)
	// Encrypt in place: plain[:0] as destination is the aliasing cipher.AEAD allows.
	k.aead.Seal(plain[:0], nonce, plain, ad)
	out := rest[len(ad):]
	valueEncoding.Encode(out, raw)
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}

// nonce fills dst (nonceLen bytes) with random bytes never handed out before. crypto/rand is WASI random_get
// inside the filter, which Envoy provides.
func (s *Sealer) nonce(dst []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == 0 {
		if _, err := rand.Read(s.nonces[:]); err != nil {
			return err
		}
	}
	copy(dst, s.nonces[s.next:s.next+nonceLen])
	s.next = (s.next + nonceLen) % len(s.nonces)
	return nil
}

// Open returns the token in value if one of the keys authenticates it for the cookie name aad. Errors are
// ErrMalformed or ErrTampered; the token's times are not checked here (see Token.Validate). Returned times are UTC.
func (s *Sealer) Open(value, aad string) (Token, error) {
	// Bound the work an attacker-chosen cookie can cause before touching it.
	if len(value) < minValueLen || len(value) > maxValueLen {
		return Token{}, ErrMalformed
	}
	s.mu.Lock()
	c, hit := s.cache[value]
	s.mu.Unlock()
	if hit && c.aad == aad {
		return c.tok, nil
	}
	tok, err := s.open(value, aad)
	if err != nil {
		return Token{}, err
	}
	s.mu.Lock()
	if len(s.cache) >= openCacheSize {
		// Dropping everything is crude but bounded and O(1) amortised; active clients refill it on their next
		// request.
		clear(s.cache)
	}
	// Clone: value may be a slice of a whole Cookie header the cache should not keep alive.
	s.cache[strings.Clone(value)] = cachedToken{aad: strings.Clone(aad), tok: tok}
	s.mu.Unlock()
	return tok, nil
}

// open is Open without the cache: it decodes and authenticates value, whose length Open has already bounded.
func (s *Sealer) open(value, aad string) (Token, error) {
	raw, err := valueEncoding.DecodeString(value)
	// The decoder skips '\r' and '\n'; a value carrying them is not one Seal produced.
	if err != nil || valueEncoding.EncodedLen(len(raw)) != len(value) || raw[0] != version1 {
		return Token{}, ErrMalformed
	}
	ad := appendAdditionalData(make([]byte, 0, headerLen+len(aad)), raw[:headerLen], aad)
	nonce := raw[headerLen:prefixLen]
	sealed := raw[prefixLen:]
	for i := range s.keys {
		k := &s.keys[i]
		if string(k.id[:]) != string(raw[1:headerLen]) {
			continue
		}
		// Decrypt into a fresh slice, not in place: a failed open may have scribbled on its destination, and
		// the next key with the same id needs the ciphertext intact.
		plain, err := k.aead.Open(nil, nonce, sealed, ad)
		if err != nil {
			continue
		}
		if len(plain) <= stampsLen {
			// Authentic yet too short: only a key holder writing its own tokens could produce this.
			return Token{}, ErrMalformed
		}
		return Token{
			Upstream: string(plain[stampsLen:]),
			Issued:   unixUTC(plain[0:8]),
			LastSeen: unixUTC(plain[8:16]),
		}, nil
	}
	return Token{}, ErrTampered
}

// appendAdditionalData appends a token's additional data to dst: its header (version and key id), then the name of
// the cookie that carries it, so that a token cannot be moved to another cookie.
func appendAdditionalData(dst, header []byte, cookieName string) []byte {
	return append(append(dst, header...), cookieName...)
}

func unixUTC(b []byte) time.Time {
	return time.Unix(int64(binary.BigEndian.Uint64(b)), 0).UTC()
}

// ParseKeys decodes base64 keys as operators write them: standard or URL-safe alphabet, padded or not,
// surrounding spaces ignored (keys often arrive comma-separated from an environment variable). Each must
// decode to 32 bytes. Errors name the index and never echo the key.
func ParseKeys(list []string) ([][]byte, error) {
	if len(list) == 0 {
		return nil, errors.New("affinity: no keys")
	}
	keys := make([][]byte, len(list))
	for i, s := range list {
		k, err := decodeKey(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("affinity: key %d: %w", i, err)
		}
		if len(k) != keyLen {
			return nil, fmt.Errorf("affinity: key %d: want %d bytes, got %d", i, keyLen, len(k))
		}
		keys[i] = k
	}
	return keys, nil
}

var keyEncodings = []*base64.Encoding{
	base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
}

func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	for _, enc := range keyEncodings {
		if k, err := enc.DecodeString(s); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("not base64 (standard or URL-safe alphabet, padded or not)")
}
