package host

import (
	"encoding/binary"
	"strings"
)

// Header maps follow Envoy's HeaderMapImpl, which is what a plugin sees through proxy_*_header_map_* in Envoy:
//
//   - names are stored lowercase (Http::LowerCaseString), values as given;
//   - pseudo-headers (":status", ":authority", ...) always precede the others; a new pseudo-header goes after the
//     last one, any other new header at the end;
//   - headers Envoy keeps "inline" (O(1) headers such as content-type, via, location, :path) hold one entry: adding
//     one that is present appends ",value" to it, as Envoy's appendToHeader does; every other header, set-cookie
//     first of all, keeps one entry per add, in order;
//   - replace (setCopy) removes every entry of the name and adds the new value as a new entry, so the header moves
//     to the end; remove drops every entry; get returns the first entry's value (Envoy does not join repeated
//     values there);
//   - in request maps the name "host" is Envoy's legacy alias of ":authority".

type mapKind uint8

const (
	kindRequestHeaders mapKind = iota
	kindResponseHeaders
	kindRequestTrailers
	kindResponseTrailers
)

// isInline reports whether Envoy keeps name as an O(1) ("inline") header in maps of the given kind. The sets are
// the defaults of Envoy's header_map.h (INLINE_REQ_HEADERS, INLINE_REQ_RESP_HEADERS, INLINE_RESP_HEADERS and the
// trailer variants) plus "referer", which the attribute code registers for request headers. Extensions can register
// more at start-up; those are not modelled and behave as regular headers here.
func isInline(kind mapKind, name string) bool { return inlineIndex(kind, name) >= 0 }

// inlineIndex numbers the inline headers of a map kind (below 64, so a bit set can track them), or returns -1.
func inlineIndex(kind mapKind, name string) int {
	switch kind {
	case kindRequestHeaders:
		switch name {
		case ":authority":
			return 12
		case ":method":
			return 13
		case ":path":
			return 14
		case ":protocol":
			return 15
		case ":scheme":
			return 16
		case "expect":
			return 17
		case "grpc-timeout":
			return 18
		case "te":
			return 19
		case "user-agent":
			return 20
		case "referer":
			return 21
		case "x-client-trace-id":
			return 22
		case "x-forwarded-client-cert":
			return 23
		case "x-forwarded-for":
			return 24
		case "x-forwarded-host":
			return 25
		case "x-forwarded-proto":
			return 26
		case "x-envoy-downstream-service-cluster":
			return 27
		case "x-envoy-downstream-service-node":
			return 28
		case "x-envoy-external-address":
			return 29
		case "x-envoy-force-trace":
			return 30
		case "x-envoy-hedge-on-per-try-timeout":
			return 31
		case "x-envoy-internal":
			return 32
		case "x-envoy-ip-tags":
			return 33
		case "x-envoy-retry-on":
			return 34
		case "x-envoy-retry-grpc-on":
			return 35
		case "x-envoy-retriable-status-codes":
			return 36
		case "x-envoy-retriable-header-names":
			return 37
		case "x-envoy-original-path":
			return 38
		case "x-envoy-original-url":
			return 39
		case "x-envoy-upstream-alt-stat-name":
			return 40
		case "x-envoy-upstream-rq-timeout-alt-response":
			return 41
		case "x-envoy-expected-rq-timeout-ms":
			return 42
		case "x-envoy-max-retries":
			return 43
		case "x-envoy-upstream-rq-timeout-ms":
			return 44
		case "x-envoy-upstream-rq-per-try-timeout-ms":
			return 45
		case "x-envoy-upstream-stream-duration-ms":
			return 46
		}
		return inlineReqRespIndex(name)
	case kindResponseHeaders:
		switch name {
		case ":status":
			return 12
		case "date":
			return 13
		case "location":
			return 14
		case "server":
			return 15
		case "grpc-status":
			return 16
		case "grpc-message":
			return 17
		case "x-envoy-degraded":
			return 18
		case "x-envoy-immediate-health-check-fail":
			return 19
		case "x-envoy-ratelimited":
			return 20
		case "x-envoy-upstream-canary":
			return 21
		case "x-envoy-upstream-healthchecked-cluster":
			return 22
		case "x-envoy-upstream-service-time":
			return 23
		}
		return inlineReqRespIndex(name)
	case kindResponseTrailers:
		switch name {
		case "grpc-status":
			return 0
		case "grpc-message":
			return 1
		}
	}
	return -1
}

func inlineReqRespIndex(name string) int {
	switch name {
	case "connection":
		return 0
	case "content-length":
		return 1
	case "content-type":
		return 2
	case "keep-alive":
		return 3
	case "proxy-connection":
		return 4
	case "proxy-status":
		return 5
	case "transfer-encoding":
		return 6
	case "upgrade":
		return 7
	case "via":
		return 8
	case "x-request-id":
		return 9
	case "x-envoy-attempt-count":
		return 10
	case "x-envoy-decorator-operation":
		return 11
	}
	return -1
}

// canonicalName lowercases name and, in request maps, maps the legacy "host" to ":authority".
func canonicalName(kind mapKind, name string) string {
	name = lowerASCII(name)
	if kind == kindRequestHeaders && name == "host" {
		return ":authority"
	}
	return name
}

// lowerASCII lowercases ASCII letters like absl::AsciiStrToLower, allocating only when something changes.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// hasUpper reports an ASCII capital letter in s. Every header name of every stream passes through it, so it looks
// at eight bytes at a time: with the top bit of each byte cleared, adding 0x80-'A' sets a byte's top bit exactly when
// the byte is 'A' or more, adding 0x80-'Z'-1 exactly when it is above 'Z', and no addition carries into the next
// byte; bytes of 0x80 and more are then excluded.
func hasUpper(s string) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
		y := x &^ high
		if (y+(0x80-'A')*ones)&^(y+(0x80-'Z'-1)*ones)&^x&high != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

func isPseudo(name string) bool { return len(name) > 0 && name[0] == ':' }

// headerMap is one header map of a stream. The pairs either alias a slice the caller handed in (which is never
// written) or live in one of two buffers the map owns and reuses from stream to stream. A callback's writes go to
// the buffer the pre-callback contents do not use, so that a failed callback can be undone by restoring the
// pre-callback slice: that is how FailOpen passes headers "as before the failing call" without copying anything on
// the common path where the plugin changes nothing.
type headerMap struct {
	kind    mapKind
	pairs   [][2]string
	cur     int8 // -1: pairs alias caller memory; 0 or 1: pairs live in bufs[cur]
	bufs    [2][][2]string
	snap    [][2]string
	snapCur int8
	dirty   bool // written since begin
	present bool // the map exists for this stream (it was loaded)
}

// reset forgets the stream's headers, keeping the buffers but not the strings they referenced.
func (m *headerMap) reset(kind mapKind) {
	clear(m.bufs[0])
	clear(m.bufs[1])
	m.bufs[0], m.bufs[1] = m.bufs[0][:0], m.bufs[1][:0]
	m.kind, m.pairs, m.cur, m.snap, m.snapCur, m.dirty, m.present = kind, nil, -1, nil, -1, false, false
}

// load takes the headers of a new message, normalised the way Envoy's codecs store them: lowercase names,
// pseudo-headers first, repeated inline headers joined with ",", and a request "host" folded into ":authority".
// When h already has that shape it is used as is, without copying.
func (m *headerMap) load(h [][2]string) {
	m.present = true
	if m.normalised(h) {
		m.pairs, m.cur = h, -1
		return
	}
	buf := m.bufs[0][:0]
	for _, p := range h {
		buf = m.addTo(buf, canonicalName(m.kind, p[0]), p[1])
	}
	m.bufs[0], m.pairs, m.cur = buf, buf, 0
}

func (m *headerMap) normalised(h [][2]string) bool {
	regular := false
	var seen uint64 // inline headers met so far
	for _, p := range h {
		name := p[0]
		if hasUpper(name) || (m.kind == kindRequestHeaders && name == "host") {
			return false
		}
		if isPseudo(name) {
			if regular {
				return false
			}
		} else {
			regular = true
		}
		if i := inlineIndex(m.kind, name); i >= 0 {
			if seen&(1<<i) != 0 {
				return false
			}
			seen |= 1 << i
		}
	}
	return true
}

// begin marks the start of a callback that may write the map.
func (m *headerMap) begin() { m.snap, m.snapCur, m.dirty = m.pairs, m.cur, false }

// rollback restores the map as it was at begin.
func (m *headerMap) rollback() { m.pairs, m.cur, m.dirty = m.snap, m.snapCur, false }

// writable returns a buffer holding the current pairs that may be changed in place.
func (m *headerMap) writable() [][2]string {
	if !m.dirty {
		m.dirty = true
		dst := int8(0)
		if m.snapCur == 0 {
			dst = 1
		}
		if m.cur != dst {
			m.bufs[dst] = append(m.bufs[dst][:0], m.pairs...)
			m.cur = dst
		}
	}
	return m.bufs[m.cur][:len(m.pairs)]
}

func (m *headerMap) store(p [][2]string) {
	m.bufs[m.cur] = p
	m.pairs = p
}

// get returns the first value of name (already canonical).
func (m *headerMap) get(name string) (string, bool) {
	for _, p := range m.pairs {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}

// joined returns every value of name joined with ",", as Envoy's getAllOfHeaderAsString does for the
// request.headers and response.headers properties.
func (m *headerMap) joined(name string) (string, bool) {
	first, n := -1, 0
	size := 0
	for i, p := range m.pairs {
		if p[0] == name {
			if first < 0 {
				first = i
			}
			n++
			size += len(p[1]) + 1
		}
	}
	if n == 0 {
		return "", false
	}
	if n == 1 {
		return m.pairs[first][1], true
	}
	var b strings.Builder
	b.Grow(size)
	sep := false
	for _, p := range m.pairs[first:] {
		if p[0] == name {
			if sep {
				b.WriteByte(',')
			}
			sep = true
			b.WriteString(p[1])
		}
	}
	return b.String(), true
}

func (m *headerMap) add(name, value string) {
	m.store(m.addTo(m.writable(), name, value))
}

// addTo is Envoy's addCopy on a pair list: name must be canonical.
func (m *headerMap) addTo(pairs [][2]string, name, value string) [][2]string {
	if isInline(m.kind, name) {
		for i := range pairs {
			if pairs[i][0] == name {
				switch {
				case value == "":
				case pairs[i][1] == "":
					pairs[i][1] = value
				default:
					pairs[i][1] = pairs[i][1] + "," + value
				}
				return pairs
			}
		}
	}
	if !isPseudo(name) {
		return append(pairs, [2]string{name, value})
	}
	at := 0
	for at < len(pairs) && isPseudo(pairs[at][0]) {
		at++
	}
	pairs = append(pairs, [2]string{})
	copy(pairs[at+1:], pairs[at:])
	pairs[at] = [2]string{name, value}
	return pairs
}

func (m *headerMap) remove(name string) {
	found := false
	for _, p := range m.pairs {
		if p[0] == name {
			found = true
			break
		}
	}
	if !found {
		return
	}
	w := m.writable()
	out := w[:0]
	for _, p := range w {
		if p[0] != name {
			out = append(out, p)
		}
	}
	clear(w[len(out):])
	m.store(out)
}

func (m *headerMap) replace(name, value string) {
	m.remove(name)
	m.add(name, value)
}

// setPairs is Envoy's setHeaderMapPairs: every present header is removed, then each pair is added in order.
func (m *headerMap) setPairs(pairs [][2]string) {
	w := m.writable()
	clear(w)
	out := w[:0]
	for _, p := range pairs {
		out = m.addTo(out, canonicalName(m.kind, p[0]), p[1])
	}
	m.store(out)
}

// byteSize is Envoy's HeaderMap::byteSize: the lengths of all names and values added up.
func (m *headerMap) byteSize() int {
	n := 0
	for _, p := range m.pairs {
		n += len(p[0]) + len(p[1])
	}
	return n
}

// pairsSize is the length of the serialized form of pairs (see marshalPairs).
func pairsSize(pairs [][2]string) int {
	n := 4
	for _, p := range pairs {
		n += 8 + len(p[0]) + len(p[1]) + 2
	}
	return n
}

// marshalPairs writes the Proxy-Wasm serialization of pairs into dst, which must be pairsSize(pairs) long: the
// number of pairs, then the lengths of each name and value, then each name and value followed by a NUL byte, all
// integers u32 little-endian.
func marshalPairs(dst []byte, pairs [][2]string) {
	binary.LittleEndian.PutUint32(dst, uint32(len(pairs)))
	sizes := dst[4:]
	data := dst[4+8*len(pairs):]
	for i, p := range pairs {
		binary.LittleEndian.PutUint32(sizes[8*i:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(sizes[8*i+4:], uint32(len(p[1])))
		n := copy(data, p[0])
		data[n] = 0
		data = data[n+1:]
		n = copy(data, p[1])
		data[n] = 0
		data = data[n+1:]
	}
}

// Limits proxy-wasm-cpp-host puts on a serialized map it reads (PROXY_WASM_HOST_PAIRS_MAX_BYTES and _COUNT).
const (
	maxPairsBytes = 1 << 20
	maxPairsCount = 1024
)

// parsePairs decodes a serialized map like proxy-wasm-cpp-host's PairsUtil::toPairs: any malformation (short
// buffer, missing NUL, trailing bytes, over the limits) yields an empty map, not an error. The strings are copied
// out of b (one allocation for all of them), so b may be guest memory that goes stale afterwards. dst is reused.
func parsePairs(dst [][2]string, b []byte) [][2]string {
	dst = dst[:0]
	if len(b) < 4 || len(b) > maxPairsBytes {
		return dst
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxPairsCount || 4+8*int(n) > len(b) {
		return dst
	}
	pos := 4 + 8*int(n)
	for i := 0; i < int(n); i++ {
		kl := int(binary.LittleEndian.Uint32(b[4+8*i:]))
		vl := int(binary.LittleEndian.Uint32(b[8+8*i:]))
		if kl >= len(b)-pos || b[pos+kl] != 0 {
			return dst[:0]
		}
		pos += kl + 1
		if vl >= len(b)-pos || b[pos+vl] != 0 {
			return dst[:0]
		}
		pos += vl + 1
	}
	if pos != len(b) {
		return dst[:0]
	}
	all := string(b[4+8*int(n):])
	off := 0
	for i := 0; i < int(n); i++ {
		kl := int(binary.LittleEndian.Uint32(b[4+8*i:]))
		vl := int(binary.LittleEndian.Uint32(b[8+8*i:]))
		k := all[off : off+kl]
		off += kl + 1
		v := all[off : off+vl]
		off += vl + 1
		dst = append(dst, [2]string{k, v})
	}
	return dst
}
