package serve

import (
	"net"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
)

// hopByHop lists the connection-level headers (RFC 9110 §7.6.1) that a proxy consumes instead of forwarding.
// Envoy removes them before its filters run, so the filter never sees them either.
var hopByHop = map[string]bool{
	"connection":          true,
	"proxy-connection":    true,
	"keep-alive":          true,
	"proxy-authenticate":  true,
	"proxy-authorization": true,
	"te":                  true,
	"trailer":             true,
	"transfer-encoding":   true,
	"upgrade":             true,
}

// connectionTokens returns the lowercase header names listed in Connection, which are hop-by-hop for this message.
func connectionTokens(h http.Header) map[string]bool {
	var m map[string]bool
	for _, v := range h.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			tok = strings.ToLower(strings.TrimSpace(tok))
			if tok == "" {
				continue
			}
			if m == nil {
				m = map[string]bool{}
			}
			m[tok] = true
		}
	}
	return m
}

// headerList turns an http.Header into the filter's ordered list: lowercase names, one entry per value, values of a
// name kept in their order. net/http hands headers over as a map, so the order between different names is lost
// before we see them; names are sorted to make the list deterministic.
func headerList(dst [][2]string, h http.Header) [][2]string {
	conn := connectionTokens(h)
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		lk := strings.ToLower(k)
		if hopByHop[lk] || conn[lk] {
			continue
		}
		for _, v := range h[k] {
			dst = append(dst, [2]string{lk, v})
		}
	}
	return dst
}

// requestHeaderList builds the request head the filter sees, with the pseudo-headers first in the order Envoy's
// header map yields them (:authority, :path, :method, :scheme), then the client's headers, then x-forwarded-for and
// x-forwarded-proto, which Envoy's connection manager sets before any filter runs.
func requestHeaderList(r *http.Request) [][2]string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.RequestURI
	if path == "" || !strings.HasPrefix(path, "/") && path != "*" {
		// absolute-form targets (proxy requests) and server-side constructed requests: keep origin-form
		path = r.URL.RequestURI()
	}
	h := make([][2]string, 0, 4+len(r.Header)+1)
	h = append(h,
		[2]string{":authority", r.Host},
		[2]string{":path", path},
		[2]string{":method", r.Method},
		[2]string{":scheme", scheme},
	)
	h = headerList(h, r.Header)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h = appendForwardedFor(h, ip)
	}
	if _, ok := r.Header["X-Forwarded-Proto"]; !ok {
		h = append(h, [2]string{"x-forwarded-proto", scheme})
	}
	return h
}

// appendForwardedFor adds the client's address to x-forwarded-for, as Envoy does at the edge (use_remote_address):
// appended to the last value when the client sent one, else a new header.
func appendForwardedFor(h [][2]string, ip string) [][2]string {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i][0] == "x-forwarded-for" {
			h[i][1] += ", " + ip
			return h
		}
	}
	return append(h, [2]string{"x-forwarded-for", ip})
}

// responseHeaderList builds the response head the filter sees: :status first, then the upstream's headers.
func responseHeaderList(resp *http.Response) [][2]string {
	h := make([][2]string, 0, 1+len(resp.Header))
	h = append(h, [2]string{":status", strconv.Itoa(resp.StatusCode)})
	return headerList(h, resp.Header)
}

// headerValue returns the first value of name (lowercase) in a list.
func headerValue(h [][2]string, name string) (string, bool) {
	for _, kv := range h {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

// validHeaderField reports whether a name/value pair may be written on the wire; a filter could produce anything,
// and net/http would otherwise drop or reject it far from the cause.
func validHeaderField(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// applyHeaders copies a filter's list into dst, skipping pseudo-headers, hop-by-hop headers and fields that cannot be
// written. It returns the number of fields it dropped as invalid.
func applyHeaders(dst http.Header, list [][2]string) (dropped int) {
	for _, kv := range list {
		name := kv[0]
		if strings.HasPrefix(name, ":") {
			continue
		}
		lname := strings.ToLower(name)
		if hopByHop[lname] {
			continue
		}
		if !validHeaderField(name, kv[1]) {
			dropped++
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		dst[key] = append(dst[key], kv[1])
	}
	return dropped
}
