package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/affinity"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// exchange is the state of one proxied request, kept together so the log line can report it.
type exchange struct {
	s       *Server
	r       *http.Request
	w       http.ResponseWriter
	fs      filterStream // nil without a filter
	started time.Time

	upstream string
	status   int
	bytes    int64
	local    string // why the proxy or the filter answered instead of an upstream
}

// ServeHTTP proxies one request in Envoy's order; each step answers the client itself when it cannot go on.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Add(-1)
	x := &exchange{s: s, r: r, w: w, started: time.Now()}
	defer x.logDone()
	if r.Body != nil {
		defer r.Body.Close()
	}
	if s.open != nil && !x.openFilter() {
		return
	}
	if x.fs != nil {
		defer x.fs.Close()
	}
	reqHeaders, ok := x.filterRequest()
	if !ok {
		return
	}
	routedTo := s.routedTo(reqHeaders)
	resp, up, ok := x.sendUpstream(routedTo, reqHeaders)
	if !ok {
		return
	}
	defer resp.Body.Close()
	respHeaders, ok := x.filterResponse(resp, routedTo, up)
	if !ok {
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		x.switchProtocols(resp, respHeaders)
		return
	}
	x.writeUpstreamResponse(resp, respHeaders)
}

// openFilter starts the filter's stream; when no instance can be had, the client gets a 503.
func (x *exchange) openFilter() bool {
	fs, err := x.s.open(x.r.Context(), x.s.streamInfo(x.r))
	if err != nil {
		if x.r.Context().Err() != nil {
			x.local = "client gone while waiting for a filter instance"
			return false
		}
		x.s.log.Warn("serve: filter stream unavailable", "err", err)
		x.proxyError(http.StatusServiceUnavailable, "filter unavailable")
		return false
	}
	x.fs = fs
	return true
}

// filterRequest runs the filter on the request head and returns the head to send upstream. It reports false when
// the filter answered the request itself.
func (x *exchange) filterRequest() ([][2]string, bool) {
	head := requestHeaderList(x.r)
	if x.fs == nil {
		return head, true
	}
	v := x.fs.OnRequestHeaders(head, x.r.ContentLength == 0)
	x.noteFilterError("request headers", v.Err)
	if v.Reset {
		x.reset()
	}
	if v.Local != nil {
		x.localReply(v.Local, "filter: request headers")
		return nil, false
	}
	return x.fs.RequestHeaders(), true
}

// routedTo is the upstream address the stateful-session header names, as the filter left it ("" for none or an
// undecodable value, which is load-balanced as Envoy does).
func (s *Server) routedTo(head [][2]string) string {
	v, ok := headerValue(head, s.routingHeader)
	if !ok {
		return ""
	}
	addr, err := affinity.DecodeRoutingValue(v)
	if err != nil {
		return ""
	}
	return addr
}

// sendUpstream picks an upstream and sends the request to it. A refused connection marks the upstream down and, when
// the body can be sent again, the request is retried once on another upstream. It reports false when the client has
// been answered (or is gone).
func (x *exchange) sendUpstream(routedTo string, head [][2]string) (*http.Response, *upstream, bool) {
	body, replayable, err := requestBody(x.r)
	if err != nil {
		x.s.log.Debug("serve: reading request body", "err", err)
		x.local = "request body unreadable"
		x.proxyError(http.StatusBadRequest, "request body unreadable")
		return nil, nil, false
	}
	var tried *upstream
	for attempt := 0; ; attempt++ {
		up := x.s.bal.pick(routedTo, tried)
		if up == nil {
			x.noHealthyUpstream()
			return nil, nil, false
		}
		x.upstream = up.addr
		if x.fs != nil {
			x.fs.SetUpstreamAddress(up.addr)
		}
		out, err := upstreamRequest(x.r, up, head, body)
		if err != nil {
			x.local = "bad request target"
			x.proxyError(http.StatusBadRequest, "bad request target")
			return nil, nil, false
		}
		up.requests.Add(1)
		resp, err := x.s.transport.RoundTrip(out)
		if err == nil {
			return resp, up, true
		}
		retry := x.upstreamFailed(up, err)
		if retry && replayable && attempt == 0 {
			tried = up
			body.rewind()
			continue
		}
		if retry && !x.s.bal.anyHealthy() {
			x.noHealthyUpstream()
			return nil, nil, false
		}
		if x.r.Context().Err() == nil {
			x.local = "upstream error"
			x.proxyError(http.StatusBadGateway, "upstream error")
		}
		return nil, nil, false
	}
}

// upstreamFailed counts a failed upstream request. It reports whether another upstream may be tried: the
// connection was refused, so the request never reached this one, which is marked down.
func (x *exchange) upstreamFailed(up *upstream, err error) (retry bool) {
	up.errors.Add(1)
	x.s.upstreamErrors.Add(1)
	if x.r.Context().Err() != nil {
		x.local = "client gone"
		return false
	}
	if !isDialError(err) {
		x.s.log.Warn("serve: upstream request failed", "upstream", up.addr, "err", err)
		return false
	}
	x.s.bal.markDown(up)
	x.s.log.Warn("serve: upstream refused the connection; marked down", "upstream", up.addr,
		"down_for", x.s.opts.DownFor, "err", err)
	return true
}

func (x *exchange) noHealthyUpstream() {
	x.s.noUpstream.Add(1)
	x.local = "no healthy upstream"
	x.proxyError(http.StatusServiceUnavailable, "no healthy upstream")
}

// filterResponse builds the response head, adds the routing header when the request was not already pinned to the
// upstream that answered (Envoy's stateful_session encoder runs before the filter on the response path), and runs
// the filter on it. It reports false when the filter replaced the response with its own.
func (x *exchange) filterResponse(resp *http.Response, routedTo string, up *upstream) ([][2]string, bool) {
	head := responseHeaderList(resp)
	if routedTo != up.addr {
		head = setHeader(head, x.s.routingHeader, affinity.EncodeRoutingValue(up.addr))
	}
	if x.fs == nil {
		return head, true
	}
	v := x.fs.OnResponseHeaders(head, responseWithoutBody(x.r, resp))
	x.noteFilterError("response headers", v.Err)
	if v.Reset {
		x.reset()
	}
	if v.Local != nil {
		// The upstream's response is replaced: its body is discarded when resp.Body closes.
		x.s.localResponses.Add(1)
		x.local = "filter: response headers"
		x.writeRaw(v.Local.Status, v.Local.Headers, v.Local.Body)
		return nil, false
	}
	return x.fs.ResponseHeaders(), true
}

// streamInfo describes the request's connection for the filter's connection properties.
func (s *Server) streamInfo(r *http.Request) host.StreamInfo {
	info := host.StreamInfo{SourceAddress: r.RemoteAddr, Protocol: "HTTP/1.1", TLS: r.TLS != nil}
	if r.TLS != nil {
		info.ServerName = r.TLS.ServerName
		info.TLSVersion = tlsVersionName(r.TLS.Version)
	}
	if r.ProtoMajor == 2 {
		info.Protocol = "HTTP/2"
	} else if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		info.Protocol = "HTTP/1.0"
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		info.DestinationAddress = a.String()
	}
	info.ConnectionID, _ = r.Context().Value(connectionIDKey{}).(uint64)
	return info
}

// tlsVersionName spells a TLS version as Envoy's connection.tls_version property does.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return ""
}

// setHeader replaces every entry of name with one entry holding value, keeping the position of the first.
func setHeader(h [][2]string, name, value string) [][2]string {
	out := h[:0:0]
	done := false
	for _, kv := range h {
		if kv[0] == name {
			if !done {
				out = append(out, [2]string{name, value})
				done = true
			}
			continue
		}
		out = append(out, kv)
	}
	if !done {
		out = append(out, [2]string{name, value})
	}
	return out
}

// responseWithoutBody reports whether a response is known to have no body, the filter's end-of-stream flag.
func responseWithoutBody(r *http.Request, resp *http.Response) bool {
	return r.Method == http.MethodHead || resp.ContentLength == 0 || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.StatusCode/100 == 1
}

// replayBody is a request body that can be sent again when the first upstream refused the connection.
type replayBody struct {
	data []byte
	rd   *bytes.Reader
}

func (b *replayBody) rewind() {
	if b != nil && b.rd != nil {
		b.rd.Reset(b.data)
	}
}

// requestBody decides how the client's body goes upstream: small sized bodies are read first so that a refused
// connection can be retried elsewhere; others are streamed as they arrive (replayable = false). A request without a
// body is always replayable.
func requestBody(r *http.Request) (body *replayBody, replayable bool, err error) {
	switch {
	case r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody:
		return nil, true, nil
	case r.ContentLength > 0 && r.ContentLength <= maxReplayBody:
		data := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, data); err != nil {
			return nil, false, err
		}
		return &replayBody{data: data, rd: bytes.NewReader(data)}, true, nil
	default:
		return nil, false, nil
	}
}

// upstreamRequest builds the request to up from the filter's request head: its method, path and authority, its
// headers minus pseudo- and hop-by-hop headers, and the client's body.
func upstreamRequest(r *http.Request, up *upstream, head [][2]string, body *replayBody) (*http.Request, error) {
	method, path, authority := r.Method, r.URL.RequestURI(), r.Host
	for _, kv := range head {
		switch kv[0] {
		case ":method":
			method = kv[1]
		case ":path":
			path = kv[1]
		case ":authority":
			authority = kv[1]
		}
	}
	target, err := url.ParseRequestURI(path)
	if err != nil || target.Host != "" || target.Scheme != "" {
		return nil, fmt.Errorf("bad :path %q", path)
	}
	u := &url.URL{
		Scheme:   up.url.Scheme,
		Host:     up.url.Host,
		Path:     up.url.Path + target.Path,
		RawQuery: target.RawQuery,
	}
	if target.RawPath != "" {
		u.RawPath = up.url.EscapedPath() + target.RawPath
	}
	out := (&http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, len(head)),
		Host:       authority,
	}).WithContext(r.Context())
	applyHeaders(out.Header, head)
	if _, ok := out.Header["User-Agent"]; !ok {
		// Go's client would otherwise send its own User-Agent for a client that sent none.
		out.Header["User-Agent"] = []string{""}
	}
	if isUpgrade(r) {
		// Upgrade and Connection are hop-by-hop, yet a WebSocket handshake must reach the upstream to be answered.
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", r.Header.Get("Upgrade"))
	}
	switch {
	case body != nil:
		out.ContentLength = int64(len(body.data))
		out.Body = io.NopCloser(body.rd)
	case r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody:
		out.ContentLength = 0
	default:
		out.ContentLength = r.ContentLength
		// The transport closes it when the upstream answers before reading it all, which unblocks the copy.
		out.Body = r.Body
	}
	return out, nil
}

// isUpgrade reports an HTTP/1.1 protocol upgrade request (WebSocket).
func isUpgrade(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.Header.Get("Upgrade") == "" {
		return false
	}
	return connectionTokens(r.Header)["upgrade"]
}

// writeUpstreamResponse writes the filter's response head and streams the upstream's body, flushing after every read.
func (x *exchange) writeUpstreamResponse(resp *http.Response, head [][2]string) {
	status := resp.StatusCode
	if v, ok := headerValue(head, ":status"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 100 && n <= 999 {
			status = n
		} else {
			x.s.log.Warn("serve: filter set an invalid :status; keeping the upstream's", "status", v)
		}
	}
	if n := applyHeaders(x.w.Header(), head); n > 0 {
		x.s.log.Warn("serve: dropped invalid response header fields", "count", n)
	}
	announceTrailers(x.w.Header(), resp.Trailer)
	x.status = status
	x.w.WriteHeader(status)
	rc := http.NewResponseController(x.w)
	if resp.ContentLength < 0 {
		// An unsized body is a stream (long-poll, server-sent events): let the client see the head now.
		rc.Flush()
	}
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	buf := *bufp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := x.w.Write(buf[:n]); werr != nil {
				x.local = "client gone during body"
				return
			}
			x.bytes += int64(n)
			rc.Flush()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if x.r.Context().Err() == nil {
				x.s.upstreamErrors.Add(1)
				x.s.log.Warn("serve: upstream body failed; aborting the response", "upstream", x.upstream, "err", rerr)
			}
			// Aborting resets the client's stream, so a truncated body is never taken for a complete one.
			panic(http.ErrAbortHandler)
		}
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			x.w.Header().Add(http.TrailerPrefix+k, v)
		}
	}
}

// announceTrailers declares the upstream's announced trailers; their values are sent after the body.
func announceTrailers(h http.Header, trailer http.Header) {
	if len(trailer) == 0 {
		return
	}
	names := make([]string, 0, len(trailer))
	for k := range trailer {
		names = append(names, k)
	}
	h.Set("Trailer", strings.Join(names, ", "))
}

// switchProtocols completes a protocol upgrade (WebSocket): the 101 head, as the filter left it (cookies set on a
// WebSocket handshake matter as much as any), goes back to the client, then bytes are copied both ways until either
// side closes.
func (x *exchange) switchProtocols(resp *http.Response, head [][2]string) {
	upConn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		x.proxyError(http.StatusBadGateway, "upstream upgrade failed")
		return
	}
	defer upConn.Close()
	conn, brw, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		x.s.log.Warn("serve: cannot take over the client connection for an upgrade", "err", err)
		return
	}
	defer conn.Close()
	h := http.Header{}
	applyHeaders(h, head)
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", resp.Header.Get("Upgrade"))
	x.status = resp.StatusCode
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	h.Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		// bytes the client sent after its handshake may already sit in brw's reader
		io.Copy(upConn, brw)
		done <- struct{}{}
	}()
	go func() {
		io.Copy(conn, upConn)
		done <- struct{}{}
	}()
	<-done
	// One direction ended: closing both connections ends the other copy too.
	conn.Close()
	upConn.Close()
	<-done
}

// localReply answers the stream with a response the filter asked for on the request path. Envoy sends such a reply
// through the response filters, this filter included, so the filter's response callback sees it too.
func (x *exchange) localReply(lr *host.LocalResponse, why string) {
	x.s.localResponses.Add(1)
	x.local = why
	status := lr.Status
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	head := make([][2]string, 0, len(lr.Headers)+3)
	head = append(head, [2]string{":status", strconv.Itoa(status)})
	hasType := false
	for _, kv := range lr.Headers {
		switch kv[0] {
		case "content-length":
			continue
		case "content-type":
			hasType = true
		}
		head = append(head, kv)
	}
	if len(lr.Body) > 0 && !hasType {
		head = append(head, [2]string{"content-type", "text/plain; charset=utf-8"})
	}
	head = append(head, [2]string{"content-length", strconv.Itoa(len(lr.Body))})
	x.respond(head, lr.Body)
}

// proxyError answers with the proxy's own error. Like Envoy's router replies, it passes through the filter's response
// callback, so the filter sees every response its stream produces.
func (x *exchange) proxyError(status int, msg string) {
	body := []byte(msg + "\n")
	x.respond([][2]string{
		{":status", strconv.Itoa(status)},
		{"content-type", "text/plain; charset=utf-8"},
		{"content-length", strconv.Itoa(len(body))},
	}, body)
}

// respond writes a response the proxy produces itself, after the filter's response callback (when there is a
// filter). When that callback answers locally in turn, its reply is written as is: a filter never sees its own
// replacement response twice.
func (x *exchange) respond(head [][2]string, body []byte) {
	if x.fs != nil {
		v := x.fs.OnResponseHeaders(head, len(body) == 0)
		x.noteFilterError("response headers", v.Err)
		switch {
		case v.Reset:
			x.reset()
		case v.Local != nil:
			x.s.localResponses.Add(1)
			x.writeRaw(v.Local.Status, v.Local.Headers, v.Local.Body)
			return
		}
		head = x.fs.ResponseHeaders()
	}
	status := http.StatusBadGateway
	if v, ok := headerValue(head, ":status"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 100 && n <= 999 {
			status = n
		}
	}
	x.writeRaw(status, head, body)
}

// writeRaw writes a complete response with a body held in memory; Content-Length always matches the body.
func (x *exchange) writeRaw(status int, head [][2]string, body []byte) {
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	h := x.w.Header()
	applyHeaders(h, head)
	if len(body) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.status = status
	x.w.WriteHeader(status)
	if x.r.Method != http.MethodHead && len(body) > 0 {
		n, _ := x.w.Write(body)
		x.bytes += int64(n)
	}
}

// reset aborts the stream without a response, as the filter asked (proxy_close_stream): net/http closes the client's
// HTTP/1 connection or resets its HTTP/2 stream. Deferred calls, the filter stream's Close among them, still run.
func (x *exchange) reset() {
	x.local = "filter reset the stream"
	panic(http.ErrAbortHandler)
}

func (x *exchange) noteFilterError(phase string, err error) {
	if err == nil {
		return
	}
	x.s.filterErrors.Add(1)
	x.s.log.Warn("serve: filter failed; handled by its failure policy", "phase", phase, "err", err)
}

func (x *exchange) logDone() {
	if !x.s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{
		"method", x.r.Method,
		"path", x.r.URL.Path,
		"proto", x.r.Proto,
		"status", x.status,
		"upstream", x.upstream,
		"bytes", x.bytes,
		"duration", time.Since(x.started),
	}
	if x.local != "" {
		attrs = append(attrs, "local", x.local)
	}
	x.s.log.Debug("request", attrs...)
}
