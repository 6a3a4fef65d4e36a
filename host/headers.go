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

// normalised reports whether h already has the shape load gives a map. It runs on every header map of every
// stream, so it makes one pass without a data-dependent branch per name: a repeated inline header is found by the
// name's slot in the kind's inline table (inlineSet), and only when two names of the list share an inline slot does
// an exact pass (noInlineTwice) tell a repeat from a collision.
func (m *headerMap) normalised(h [][2]string) bool {
	set := &inlineSets[m.kind]
	request := m.kind == kindRequestHeaders
	regular := false
	var seen [4]uint64 // inline slots met so far
	var shared uint64  // non-zero once two names met the same inline slot
	for i := range h {
		name := h[i][0]
		if isPseudo(name) {
			if regular {
				return false
			}
		} else {
			regular = true
		}
		if hasUpper(name) || (request && name == "host") {
			return false
		}
		if n := len(name); n >= 2 && n <= maxInlineLen {
			slot := inlineSlot(name, set.mul)
			w, bit := slot>>6, uint64(1)<<(slot&63)&set.occupied[slot>>6]
			shared |= seen[w] & bit
			seen[w] |= bit
		}
	}
	return shared == 0 || noInlineTwice(set, h)
}

// noInlineTwice reports whether no inline header of the set occurs twice in h.
func noInlineTwice(set *inlineSet, h [][2]string) bool {
	var seen uint64 // inline headers met so far, by index
	for i := range h {
		if i := set.index(h[i][0]); i >= 0 {
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
