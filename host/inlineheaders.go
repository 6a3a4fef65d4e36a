package host

import "fmt"

// The headers Envoy keeps "inline" (O(1)) in each kind of map: the defaults of Envoy's header_map.h
// (INLINE_REQ_HEADERS, INLINE_REQ_RESP_HEADERS, INLINE_RESP_HEADERS and the trailer variants) plus "referer",
// which the attribute code registers for request headers. Extensions can register more at start-up; those are not
// modelled and behave as regular headers here.
var (
	inlineReqRespNames = []string{
		"connection", "content-length", "content-type", "keep-alive", "proxy-connection", "proxy-status",
		"transfer-encoding", "upgrade", "via", "x-request-id", "x-envoy-attempt-count", "x-envoy-decorator-operation",
	}
	inlineRequestOnlyNames = []string{
		":authority", ":method", ":path", ":protocol", ":scheme", "expect", "grpc-timeout", "te", "user-agent",
		"referer", "x-client-trace-id", "x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-host",
		"x-forwarded-proto", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node",
		"x-envoy-external-address", "x-envoy-force-trace", "x-envoy-hedge-on-per-try-timeout", "x-envoy-internal",
		"x-envoy-ip-tags", "x-envoy-retry-on", "x-envoy-retry-grpc-on", "x-envoy-retriable-status-codes",
		"x-envoy-retriable-header-names", "x-envoy-original-path", "x-envoy-original-url",
		"x-envoy-upstream-alt-stat-name", "x-envoy-upstream-rq-timeout-alt-response",
		"x-envoy-expected-rq-timeout-ms", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms",
		"x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-stream-duration-ms",
	}
	inlineResponseOnlyNames = []string{
		":status", "date", "location", "server", "grpc-status", "grpc-message", "x-envoy-degraded",
		"x-envoy-immediate-health-check-fail", "x-envoy-ratelimited", "x-envoy-upstream-canary",
		"x-envoy-upstream-healthchecked-cluster", "x-envoy-upstream-service-time",
	}
	inlineResponseTrailerNames = []string{"grpc-status", "grpc-message"}
)

// repeatedNames are regular headers that messages commonly carry more than once. The inline tables keep them out
// of the inline slots, so that their repeats never send normalised to its exact pass.
var repeatedNames = []string{"set-cookie", "cookie", "cache-control", "vary", "accept", "link", "warning"}

// inlineNames holds the inline headers of each map kind; a header's position is its index (see inlineIndex).
var inlineNames = [...][]string{
	kindRequestHeaders:   concat(inlineReqRespNames, inlineRequestOnlyNames),
	kindResponseHeaders:  concat(inlineReqRespNames, inlineResponseOnlyNames),
	kindRequestTrailers:  nil,
	kindResponseTrailers: inlineResponseTrailerNames,
}

func concat(a, b []string) []string { return append(append([]string(nil), a...), b...) }

// isInline reports whether Envoy keeps name as an inline header in maps of the given kind.
func isInline(kind mapKind, name string) bool { return inlineSets[kind].index(name) >= 0 }

// inlineIndex numbers the inline headers of a map kind (below 64, so a bit set can track them), or returns -1.
func inlineIndex(kind mapKind, name string) int { return inlineSets[kind].index(name) }

// inlineSet finds the inline headers of one map kind by a multiplicative hash of the name's length and three of
// its bytes into 256 slots, chosen at start-up so that no two inline names of the kind share a slot.
type inlineSet struct {
	slots    [256]uint8 // 1 + the index of the name hashed there, or 0 for none
	occupied [4]uint64  // the slots that hold a name, as bits
	names    []string
	mul      uint32
}

// index returns the position of name in s.names, or -1.
func (s *inlineSet) index(name string) int {
	if n := len(name); n < 2 || n > maxInlineLen {
		return -1
	}
	i := int(s.slots[inlineSlot(name, s.mul)]) - 1
	if i < 0 || s.names[i] != name {
		return -1
	}
	return i
}

// inlineSlot hashes a name of two bytes or more: its length, last byte, middle byte and the byte three quarters in
// are the cheapest choice that tells every pair of inline names of one kind apart (retriable-status-codes and
// retriable-header-names share length, middle and last byte).
func inlineSlot(name string, mul uint32) uint8 {
	n := len(name)
	key := uint32(n) | uint32(name[n-1])<<8 | uint32(name[n/2])<<16 | uint32(name[3*n/4])<<24
	return uint8((key * mul) >> 24)
}

// maxInlineLen is the length of the longest inline name ("x-envoy-upstream-rq-timeout-alt-response").
const maxInlineLen = 40

var inlineSets = func() (sets [len(inlineNames)]inlineSet) {
	for kind, names := range inlineNames {
		sets[kind] = newInlineSet(names)
	}
	return sets
}()

// newInlineSet finds the first odd multiplier, counting up from the golden ratio's, under which the names land in
// distinct slots and no repeated name lands in theirs. It panics when none is found, which the tests would show at
// once.
func newInlineSet(names []string) inlineSet {
next:
	for mul := uint32(0x9e3779b1); mul < 0x9e3779b1+1<<21; mul += 2 {
		s := inlineSet{names: names, mul: mul}
		for i, name := range names {
			slot := inlineSlot(name, mul)
			if s.slots[slot] != 0 {
				continue next
			}
			s.slots[slot] = uint8(i + 1)
			s.occupied[slot>>6] |= 1 << (slot & 63)
		}
		for _, name := range repeatedNames {
			if s.slots[inlineSlot(name, mul)] != 0 {
				continue next
			}
		}
		return s
	}
	panic(fmt.Sprintf("host: no multiplier separates the inline header names %q", names))
}
