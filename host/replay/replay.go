// Package replay runs captured HTTP response heads through a proxy-wasm filter, one fresh stream per head, and
// writes the heads the filter produces: the offline counterpart of `wasmhost serve`.
//
// Each stream sees the request head first (on_request_headers with :authority, :path, :method and :scheme, then the
// request's headers), then the response head (on_response_headers with :status, then the response's headers). When
// the filter answers with a local response, that head is written instead.
//
// Output follows Envoy's header semantics: header names come back lowercased (Envoy's header maps, like HTTP/2, do
// not keep the original casing), field order and repeated fields are kept, and the status line is rebuilt as
// "HTTP/1.1 <code> <reason>", keeping the input's reason when the filter left the status unchanged.
package replay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// Filter is what a replay needs of the wasm host: one stream per head. *host.Host implements it.
type Filter interface {
	NewStream(ctx context.Context, info host.StreamInfo) (*host.Stream, error)
}

// stream is the part of *host.Stream a replay calls; tests drive it with fakes and with the SDK's own runner.
type stream interface {
	OnRequestHeaders(headers [][2]string, endOfStream bool) host.Verdict
	SetUpstreamAddress(addr string)
	OnResponseHeaders(headers [][2]string, endOfStream bool) host.Verdict
	ResponseHeaders() [][2]string
	Close()
}

// Options configures a replay.
type Options struct {
	// Filter runs each head; required.
	Filter Filter
	// open, when set by tests, starts streams instead of Filter.
	open func(ctx context.Context, info host.StreamInfo) (stream, error)
	// Request is the request every response answers; the zero value means DefaultRequest().
	Request RequestHead
	// UpstreamAddress, when set, is given to each stream as property upstream.address ("ip:port"), as the proxy would
	// once it has picked an upstream.
	UpstreamAddress string
	// Logger receives the guest failures the filter handled by its failure policy; default slog.Default().
	Logger *slog.Logger
}

// Replay parses every response head from in, runs each through a fresh stream and writes the results to out in the
// same order. Input is parsed completely first, so bad input produces no output.
func Replay(ctx context.Context, o Options, in io.Reader, out io.Writer) error {
	heads, err := ParseResponses(in)
	if err != nil {
		return err
	}
	return o.RunAll(ctx, heads, out)
}

// RunAll runs each head through a fresh stream and writes the results to out in the same order.
func (o Options) RunAll(ctx context.Context, heads []ResponseHead, out io.Writer) error {
	bw := bufio.NewWriter(out)
	for i, h := range heads {
		res, err := o.Run(ctx, h)
		if err != nil {
			return fmt.Errorf("replay: head %d (line %d): %w", i+1, h.Line, err)
		}
		if err := WriteResponse(bw, res); err != nil {
			return fmt.Errorf("replay: output: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("replay: output: %w", err)
	}
	return nil
}

// Run replays one response head through a fresh stream and returns the head the filter produced.
func (o Options) Run(ctx context.Context, resp ResponseHead) (ResponseHead, error) {
	if o.Filter == nil && o.open == nil {
		return ResponseHead{}, fmt.Errorf("no filter")
	}
	req := o.Request
	if req.Method == "" {
		req = DefaultRequest()
	}
	reqHeaders, scheme, err := requestHeaderList(req)
	if err != nil {
		return ResponseHead{}, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	s, err := o.newStream(ctx, host.StreamInfo{
		SourceAddress:      "127.0.0.1:40000",
		DestinationAddress: "127.0.0.1:443",
		Protocol:           "HTTP/1.1",
		TLS:                scheme == "https",
	})
	if err != nil {
		return ResponseHead{}, fmt.Errorf("filter stream: %w", err)
	}
	defer s.Close()

	v := s.OnRequestHeaders(reqHeaders, true)
	if v.Err != nil {
		log.Warn("replay: filter failed on request headers; handled by its failure policy", "line", resp.Line, "err", v.Err)
	}
	if v.Reset {
		return ResponseHead{}, errReset
	}
	if v.Local != nil {
		// As in Envoy (and `wasmhost serve`), a local reply from the request path passes the filter's response
		// callback: that is the response the filter's stream produces, instead of the captured one.
		local := localHead(v.Local)
		local.Line = resp.Line
		resp = local
	} else if o.UpstreamAddress != "" {
		s.SetUpstreamAddress(o.UpstreamAddress)
	}
	respHeaders := make([][2]string, 0, 1+len(resp.Headers))
	respHeaders = append(respHeaders, [2]string{":status", strconv.Itoa(resp.Status)})
	for _, kv := range resp.Headers {
		respHeaders = append(respHeaders, [2]string{strings.ToLower(kv[0]), kv[1]})
	}
	v = s.OnResponseHeaders(respHeaders, withoutBody(resp))
	if v.Err != nil {
		log.Warn("replay: filter failed on response headers; handled by its failure policy", "line", resp.Line, "err", v.Err)
	}
	if v.Reset {
		return ResponseHead{}, errReset
	}
	if v.Local != nil {
		return localHead(v.Local), nil
	}
	return headFromList(s.ResponseHeaders(), resp), nil
}

// errReset reports a stream the filter reset (proxy_close_stream): it produced no response head to print.
var errReset = errors.New("the filter reset the stream; no response to print")

// requestHeaderList builds the request head the filter sees, in the order Envoy's header map yields it.
func requestHeaderList(req RequestHead) ([][2]string, string, error) {
	scheme, authority, path, err := requestTarget(req.Target)
	if err != nil {
		return nil, "", err
	}
	var rest [][2]string
	hasXFP := false
	for _, kv := range req.Headers {
		name := strings.ToLower(kv[0])
		switch name {
		case "host":
			// Envoy turns Host into :authority; an absolute-form target wins, as RFC 9112 §3.2.2 says.
			if authority == "" {
				authority = kv[1]
			}
			continue
		case "x-forwarded-proto":
			hasXFP = true
		}
		rest = append(rest, [2]string{name, kv[1]})
	}
	if authority == "" {
		authority = "localhost"
	}
	h := make([][2]string, 0, 5+len(rest))
	h = append(h,
		[2]string{":authority", authority},
		[2]string{":path", path},
		[2]string{":method", req.Method},
		[2]string{":scheme", scheme},
	)
	h = append(h, rest...)
	if !hasXFP {
		h = append(h, [2]string{"x-forwarded-proto", scheme})
	}
	return h, scheme, nil
}

// requestTarget splits a request target. Origin-form targets are replayed as received over TLS (scheme "https"): the
// filter is meant for a TLS-terminating balancer, and an absolute-form target says otherwise when needed.
func requestTarget(target string) (scheme, authority, path string, err error) {
	if strings.HasPrefix(target, "/") {
		if _, err := url.ParseRequestURI(target); err != nil {
			return "", "", "", fmt.Errorf("request target %q: %v", target, err)
		}
		return "https", "", target, nil
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", "", fmt.Errorf("request target %q: want a path (\"/chat\") or an absolute http(s) URL", target)
	}
	path = u.RequestURI()
	return u.Scheme, u.Host, path, nil
}

// withoutBody reports a response known to have no body: the filter's end-of-stream flag on response headers.
func withoutBody(h ResponseHead) bool {
	if h.Status/100 == 1 || h.Status == http.StatusNoContent || h.Status == http.StatusNotModified {
		return true
	}
	for _, kv := range h.Headers {
		if strings.EqualFold(kv[0], "content-length") && strings.TrimSpace(kv[1]) == "0" {
			return true
		}
	}
	return false
}

func (o Options) newStream(ctx context.Context, info host.StreamInfo) (stream, error) {
	if o.open != nil {
		return o.open(ctx, info)
	}
	s, err := o.Filter.NewStream(ctx, info)
	if err != nil {
		return nil, err // a nil *host.Stream must not become a non-nil interface
	}
	return s, nil
}

// headFromList turns the filter's header list back into a head; orig supplies the reason when the status is kept.
func headFromList(list [][2]string, orig ResponseHead) ResponseHead {
	out := ResponseHead{Proto: "HTTP/1.1", Status: orig.Status, Reason: orig.Reason, Line: orig.Line}
	for _, kv := range list {
		if kv[0] == ":status" {
			if n, err := strconv.Atoi(kv[1]); err == nil && n >= 100 && n <= 999 && n != orig.Status {
				out.Status, out.Reason = n, http.StatusText(n)
			}
			continue
		}
		if strings.HasPrefix(kv[0], ":") {
			continue
		}
		out.Headers = append(out.Headers, kv)
	}
	if out.Reason == "" {
		out.Reason = http.StatusText(out.Status)
	}
	return out
}

// localHead is the head of a filter's local response as the proxy would send it: the filter's headers, then
// content-type (when there is a body and none was given) and content-length.
func localHead(lr *host.LocalResponse) ResponseHead {
	out := ResponseHead{Proto: "HTTP/1.1", Status: lr.Status}
	if out.Status < 100 || out.Status > 999 {
		out.Status = http.StatusInternalServerError
	}
	out.Reason = http.StatusText(out.Status)
	hasType := false
	for _, kv := range lr.Headers {
		name := strings.ToLower(kv[0])
		switch {
		case strings.HasPrefix(name, ":"), name == "content-length":
			continue
		case name == "content-type":
			hasType = true
		}
		out.Headers = append(out.Headers, [2]string{name, kv[1]})
	}
	if len(lr.Body) > 0 && !hasType {
		out.Headers = append(out.Headers, [2]string{"content-type", "text/plain; charset=utf-8"})
	}
	out.Headers = append(out.Headers, [2]string{"content-length", strconv.Itoa(len(lr.Body))})
	return out
}

// WriteResponse writes a head as HTTP/1.1 with CRLF line endings and a terminating empty line. Fields that could not
// be written on the wire (a CR or LF in a value) are refused rather than split into two.
func WriteResponse(w io.Writer, h ResponseHead) error {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", h.Status, h.Reason)
	for _, kv := range h.Headers {
		if strings.ContainsAny(kv[0], "\r\n: ") || strings.ContainsAny(kv[1], "\r\n") {
			return fmt.Errorf("header %q: cannot be written as an HTTP/1.1 field", kv[0])
		}
		b.WriteString(kv[0])
		b.WriteString(": ")
		b.WriteString(kv[1])
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	_, err := io.WriteString(w, b.String())
	return err
}
