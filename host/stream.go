package host

import (
	"strconv"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

// StreamInfo describes the downstream connection of a stream. It feeds the source.*, destination.*, connection.*
// and request.protocol properties.
type StreamInfo struct {
	SourceAddress      string // the client's "ip:port"
	DestinationAddress string // the listener's "ip:port"
	Protocol           string // "HTTP/1.0", "HTTP/1.1", "HTTP/2" or "HTTP/3"; empty: request.protocol not found
	TLS                bool
	TLSVersion         string // "TLSv1.3", property connection.tls_version (TLS only)
	ServerName         string // SNI, property connection.requested_server_name
	ConnectionID       uint64 // properties connection.id and connection_id
}

// Verdict is the outcome of one callback of a stream.
type Verdict struct {
	// Local, when non-nil, is the response to send instead of continuing: the plugin's own
	// (proxy_send_local_response), or the failure policy's 503. From a request callback, Envoy passes a local
	// response through the response filters, this plugin's proxy_on_response_headers included; a caller that
	// wants the same calls OnResponseHeaders with it.
	Local *LocalResponse
	// Err reports a plugin failure, already handled according to the failure policy; it is for logging.
	Err error
	// Paused reports that the plugin returned Pause. Envoy would hold the message until the plugin resumes it
	// (proxy_continue_stream, or Continue from a later body callback); this host has no way to resume a stream
	// asynchronously, so a caller that cannot hold data treats Paused as Continue. Body callbacks that return
	// Pause make the host buffer the body: the next body call sees everything received so far.
	Paused bool
	// Reset reports that the plugin asked to reset the stream (proxy_close_stream).
	Reset bool
}

// LocalResponse is a response produced by the plugin (proxy_send_local_response) or by the failure policy.
type LocalResponse struct {
	Status int
	// Headers are the plugin's additional headers with lowercase names, plus "content-type: text/plain" for a
	// non-empty body that has none, as Envoy's local replies get.
	Headers [][2]string
	Body    []byte
	// Details is Envoy's response code details (whitespace replaced by "_"); "wasm_fail_stream" for the failure
	// policy's 503.
	Details string
	// GRPCStatus is the gRPC status the plugin asked for, or -1 for none.
	GRPCStatus int
}

// streamState is everything the host knows about the stream an instance serves, kept in the instance and reused.
type streamState struct {
	id      uint32
	info    StreamInfo
	start   time.Time
	created bool
	deleted bool // proxy_on_delete has run: the context no longer exists

	req, resp                   headerMap
	reqMutable, respMutable     bool // Envoy's request_headers_/response_headers_ are set
	logPhase                    bool // in proxy_on_log: maps readable as the access log sees them
	reqBody, respBody           []byte
	reqBodyAvail, respBodyAvail bool
	reqBuffering, respBuffering bool
	reqBytes, respBytes         int64

	upstream    string
	status      int
	codeDetails string
	local       *LocalResponse
	reset       bool
	props       map[string][]byte
}

func (st *streamState) begin(inst *instance, info StreamInfo, now time.Time) {
	props := st.props
	clear(props)
	reqBody, respBody := st.reqBody[:0], st.respBody[:0]
	req, resp := st.req, st.resp
	*st = streamState{id: inst.newStreamID(), info: info, start: now, props: props, reqBody: reqBody, respBody: respBody, req: req, resp: resp}
	st.req.reset(kindRequestHeaders)
	st.resp.reset(kindResponseHeaders)
}

// requestHeadersForProps is the request map as Envoy's attributes see it (activation_request_headers_): the live
// map while it is available, the access log's copy in proxy_on_log, otherwise none.
func (st *streamState) requestHeadersForProps() *headerMap {
	if (st.reqMutable || st.logPhase) && st.req.present {
		return &st.req
	}
	return nil
}

func (st *streamState) responseHeadersForProps() *headerMap {
	if (st.respMutable || st.logPhase) && st.resp.present {
		return &st.resp
	}
	return nil
}

// Stream is one HTTP stream through the plugin, used by one goroutine. Call the methods in Envoy's order:
// OnRequestHeaders, OnRequestBody (zero or more times), SetUpstreamAddress, OnResponseHeaders, OnResponseBody,
// then Close exactly once. Header lists are ordered pairs; requests carry :method, :path, :authority and :scheme,
// responses :status. The slices passed in must not be modified until Close.
type Stream struct {
	h      *Host
	inst   *instance // nil once the plugin failed and the instance was discarded
	st     *streamState
	gen    uint64
	closed bool
	failed bool
}

// OnRequestHeaders runs proxy_on_request_headers. The plugin may change the headers (see RequestHeaders), answer
// locally, or fail (see Verdict). After the callback returns Continue the request headers are no longer available
// to the plugin, as in Envoy; a plugin that needs them later keeps a copy.
func (s *Stream) OnRequestHeaders(h [][2]string, endOfStream bool) Verdict {
	if s.closed {
		return Verdict{}
	}
	st := s.st
	st.req.load(h)
	if s.failed {
		return Verdict{}
	}
	st.reqMutable = true
	if v, failed := s.ensureCreated(); failed {
		return v
	}
	return s.run(s.inst.fn.requestHeaders, phaseRequestHeaders, uint64(len(st.req.pairs)), endOfStream)
}

// OnRequestBody runs proxy_on_request_body on the next chunk of the request body; RequestBody returns what to
// forward. When the plugin returns Pause the host keeps the body and the next call appends to it.
func (s *Stream) OnRequestBody(chunk []byte, endOfStream bool) Verdict {
	if s.closed {
		return Verdict{}
	}
	st := s.st
	if !st.reqBuffering || s.failed {
		st.reqBody = st.reqBody[:0]
	}
	st.reqBody = append(st.reqBody, chunk...)
	st.reqBytes += int64(len(chunk))
	if s.failed || s.inst.fn.requestBody == nil {
		return Verdict{}
	}
	st.reqBodyAvail = true
	if v, failed := s.ensureCreated(); failed {
		return v
	}
	return s.run(s.inst.fn.requestBody, phaseRequestBody, uint64(len(st.reqBody)), endOfStream)
}

// SetUpstreamAddress records the "ip:port" of the upstream serving the stream: the upstream.address and
// upstream.port properties.
func (s *Stream) SetUpstreamAddress(addr string) {
	if !s.closed {
		s.st.upstream = addr
	}
}

// OnResponseHeaders runs proxy_on_response_headers. The headers must include :status.
func (s *Stream) OnResponseHeaders(h [][2]string, endOfStream bool) Verdict {
	if s.closed {
		return Verdict{}
	}
	st := s.st
	st.resp.load(h)
	if s.failed {
		return Verdict{}
	}
	st.respMutable = true
	if v, ok := st.resp.get(":status"); ok {
		if code, err := strconv.Atoi(v); err == nil {
			st.status = code
		}
	}
	if st.codeDetails == "" {
		st.codeDetails = "via_upstream"
	}
	if v, failed := s.ensureCreated(); failed {
		return v
	}
	return s.run(s.inst.fn.responseHeaders, phaseResponseHeaders, uint64(len(st.resp.pairs)), endOfStream)
}

// OnResponseBody runs proxy_on_response_body on the next chunk of the response body; ResponseBody returns what to
// forward. When the plugin returns Pause the host keeps the body and the next call appends to it.
func (s *Stream) OnResponseBody(chunk []byte, endOfStream bool) Verdict {
	if s.closed {
		return Verdict{}
	}
	st := s.st
	if !st.respBuffering || s.failed {
		st.respBody = st.respBody[:0]
	}
	st.respBody = append(st.respBody, chunk...)
	st.respBytes += int64(len(chunk))
	if s.failed || s.inst.fn.responseBody == nil {
		return Verdict{}
	}
	st.respBodyAvail = true
	if v, failed := s.ensureCreated(); failed {
		return v
	}
	return s.run(s.inst.fn.responseBody, phaseResponseBody, uint64(len(st.respBody)), endOfStream)
}

// RequestHeaders returns the request headers after the plugin's changes (before a failing callback's changes
// under FailOpen), with lowercase names. The slice is the caller's own when nothing changed, a copy otherwise.
func (s *Stream) RequestHeaders() [][2]string {
	if s.closed {
		return nil
	}
	return s.st.req.export()
}

// ResponseHeaders returns the response headers after the plugin's changes, like RequestHeaders.
func (s *Stream) ResponseHeaders() [][2]string {
	if s.closed {
		return nil
	}
	return s.st.resp.export()
}

// RequestBody returns the request body to forward after OnRequestBody: the chunk as the plugin left it, or all
// chunks held since the plugin started pausing. It is valid until the next call on the stream.
func (s *Stream) RequestBody() []byte {
	if s.closed {
		return nil
	}
	return s.st.reqBody
}

// ResponseBody returns the response body to forward after OnResponseBody, like RequestBody.
func (s *Stream) ResponseBody() []byte {
	if s.closed {
		return nil
	}
	return s.st.respBody
}

func (m *headerMap) export() [][2]string {
	if m.cur < 0 {
		return m.pairs
	}
	return append([][2]string(nil), m.pairs...)
}

// Close ends the stream in Envoy's order, proxy_on_log (the access log), then proxy_on_done and proxy_on_delete,
// and returns the instance to the pool. A stream whose plugin failed has no instance left; Close only counts it.
func (s *Stream) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.h.stats.active.Add(-1)
	if s.failed || s.inst.gen != s.gen {
		return
	}
	inst, st := s.inst, s.st
	st.reqMutable, st.respMutable, st.reqBodyAvail, st.respBodyAvail = false, false, false, false
	if err := s.finish(); err != nil {
		s.inst = nil
		s.h.failed(inst, err)
		return
	}
	if err := inst.idleWork(); err != nil {
		s.inst = nil
		s.h.failed(inst, err)
		return
	}
	st.local = nil
	s.h.release(inst)
}

func (s *Stream) finish() error {
	inst, st := s.inst, s.st
	if !st.created {
		// Envoy creates the context from its access log hook even for a stream the filter never saw.
		st.created = true
		if _, err := inst.call2(inst.fn.contextCreate, phaseContextCreate, uint64(st.id), rootContextID); err != nil {
			return err
		}
	}
	st.logPhase = true
	if _, err := inst.call1(inst.fn.log, phaseLog, uint64(st.id)); err != nil {
		return err
	}
	st.logPhase = false
	if _, err := inst.call1(inst.fn.done, phaseDone, uint64(st.id)); err != nil {
		return err
	}
	_, err := inst.call1(inst.fn.delete, phaseDelete, uint64(st.id))
	st.deleted = true
	return err
}

// ensureCreated creates the plugin's context for the stream before its first callback.
func (s *Stream) ensureCreated() (Verdict, bool) {
	st := s.st
	if st.created {
		return Verdict{}, false
	}
	st.created = true
	st.req.begin()
	st.resp.begin()
	if _, err := s.inst.call2(s.inst.fn.contextCreate, phaseContextCreate, uint64(st.id), rootContextID); err != nil {
		return s.fail(err), true
	}
	return Verdict{}, false
}

// run calls one HTTP callback and turns its outcome into a Verdict, with Envoy's bookkeeping: a header map or
// body stays available to the plugin only while the plugin pauses that direction.
func (s *Stream) run(fn api.Function, ph phase, size uint64, endOfStream bool) Verdict {
	st := s.st
	st.req.begin()
	st.resp.begin()
	eos := uint64(0)
	if endOfStream {
		eos = 1
	}
	action, err := s.inst.call3(fn, ph, uint64(st.id), size, eos)
	if err != nil {
		return s.fail(err)
	}
	paused := uint32(action) == abi.ActionPause
	switch ph {
	case phaseRequestHeaders:
		if !paused {
			st.reqMutable = false
		}
	case phaseResponseHeaders:
		if !paused {
			st.respMutable = false
		}
	case phaseRequestBody:
		st.reqBuffering = paused
		st.reqBodyAvail = paused
	case phaseResponseBody:
		st.respBuffering = paused
		st.respBodyAvail = paused
	}
	v := Verdict{Paused: paused, Reset: st.reset}
	if st.local != nil {
		v.Local, st.local = st.local, nil
		v.Paused = false
	}
	return v
}

// fail applies the failure policy to a stream whose plugin just failed. The failing callback's header changes are
// undone, the instance is discarded (and replaced in the background), and later callbacks of the stream are
// skipped, as Envoy skips a failed VM.
func (s *Stream) fail(err error) Verdict {
	st := s.st
	st.req.rollback()
	st.resp.rollback()
	st.local = nil
	inst := s.inst
	s.failed, s.inst = true, nil
	s.h.failed(inst, err)
	if s.h.opts.FailurePolicy == FailOpen {
		s.h.stats.failOpen.Add(1)
		return Verdict{Err: err}
	}
	s.h.stats.failClosed.Add(1)
	st.status, st.codeDetails = 503, failStreamDetails
	return Verdict{Err: err, Local: &LocalResponse{Status: 503, Details: failStreamDetails, GRPCStatus: grpcUnavailable}}
}

// Envoy's failStream: a 503 with no body, details "wasm_fail_stream" and, for gRPC, status UNAVAILABLE (14).
const (
	failStreamDetails = "wasm_fail_stream"
	grpcUnavailable   = 14
)
