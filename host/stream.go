package host

import (
	"fmt"
	"strconv"
	"sync"
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

// streamState is everything the host knows about one stream: what the host functions read and write while the
// stream's callbacks run (or while another context of its instance acts on it through
// proxy_set_effective_context). It is guarded by the mutex of the stream's instance, and recycled through
// streamStates so that a stream allocates no state of its own.
type streamState struct {
	id      uint32
	info    StreamInfo
	start   time.Time
	created bool

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

// streamStates recycles stream states, with their header buffers, from closed streams to new ones. A state in the
// pool is clean (see release), so that begin only sets what differs from stream to stream.
var streamStates = sync.Pool{New: func() any {
	st := new(streamState)
	st.req.reset(kindRequestHeaders)
	st.resp.reset(kindResponseHeaders)
	return st
}}

func (st *streamState) begin(id uint32, info StreamInfo, now time.Time) {
	st.id, st.info, st.start = id, info, now
}

// maxKeptBody is the largest body buffer a recycled stream state keeps: a stream that buffered a large body should
// not leave that much memory to every stream state in the pool.
const maxKeptBody = 64 << 10

// release cleans the state and returns it to streamStates: every field is zeroed except the buffers, which drop
// what they reference of the caller's and the plugin's data.
func (st *streamState) release() {
	st.req.reset(kindRequestHeaders)
	st.resp.reset(kindResponseHeaders)
	props := st.props
	if len(props) > 0 {
		clear(props)
	}
	reqBody, respBody := st.reqBody[:0], st.respBody[:0]
	if cap(reqBody) > maxKeptBody {
		reqBody = nil
	}
	if cap(respBody) > maxKeptBody {
		respBody = nil
	}
	req, resp := st.req, st.resp
	*st = streamState{props: props, reqBody: reqBody, respBody: respBody, req: req, resp: resp}
	streamStates.Put(st)
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
//
// A stream is pinned to one instance from NewStream to Close, like an Envoy stream to its worker's VM, and shares
// it with the instance's other streams: each method holds the instance only while it runs, so a stream that waits
// (a long-poll held open by the upstream for half a minute) costs the instance nothing in between. If the
// instance's plugin fails in another stream's callback, this stream's context is gone with it: its next callback
// gets the failure policy's answer, as if it had failed itself.
type Stream struct {
	h      *Host
	inst   *instance
	st     *streamState // nil once closed
	closed bool
	failed bool // the plugin failed in this stream or its instance died: later callbacks are skipped
}

// enter takes the stream's instance for one method call and makes the stream its current one; the caller
// unlocks inst.mu when done.
func (s *Stream) enter() *instance {
	inst := s.inst
	inst.mu.Lock()
	inst.cur = s.st
	return inst
}

// callable reports whether the plugin can be called for the stream; when its instance died in another stream's
// callback, it applies the failure policy instead and returns the verdict.
func (s *Stream) callable(ph phase) (Verdict, bool) {
	if s.failed {
		return Verdict{}, false
	}
	if s.inst.dead.Load() {
		return s.orphaned(ph), false
	}
	return Verdict{}, true
}

// OnRequestHeaders runs proxy_on_request_headers. The plugin may change the headers (see RequestHeaders), answer
// locally, or fail (see Verdict). After the callback returns Continue the request headers are no longer available
// to the plugin, as in Envoy; a plugin that needs them later keeps a copy.
func (s *Stream) OnRequestHeaders(h [][2]string, endOfStream bool) Verdict {
	if s.closed {
		return Verdict{}
	}
	inst := s.enter()
	defer inst.mu.Unlock()
	st := s.st
	st.req.load(h)
	if v, ok := s.callable(phaseRequestHeaders); !ok {
		return v
	}
	st.reqMutable = true
	if v, failed := s.ensureCreated(); failed {
		return v
	}
	return s.run(inst.fn.requestHeaders, phaseRequestHeaders, uint64(len(st.req.pairs)), endOfStream)
}

// OnRequestBody runs proxy_on_request_body on the next chunk of the request body; RequestBody returns what to
// forward. When the plugin returns Pause the host keeps the body and the next call appends to it.
func (s *Stream) OnRequestBody(chunk []byte, endOfStream bool) Verdict {
	if s.closed {
		return Verdict{}
	}
	inst := s.enter()
	defer inst.mu.Unlock()
	st := s.st
	return s.onBody(inst.fn.requestBody, phaseRequestBody, &st.reqBody, &st.reqBytes, st.reqBuffering, &st.reqBodyAvail,
		chunk, endOfStream)
}

// SetUpstreamAddress records the "ip:port" of the upstream serving the stream: the upstream.address and
// upstream.port properties.
func (s *Stream) SetUpstreamAddress(addr string) {
	if s.closed {
		return
	}
	inst := s.enter()
	s.st.upstream = addr
	inst.mu.Unlock()
}

// OnResponseHeaders runs proxy_on_response_headers. The headers must include :status.
func (s *Stream) OnResponseHeaders(h [][2]string, endOfStream bool) Verdict {
	if s.closed {
		return Verdict{}
	}
	inst := s.enter()
	defer inst.mu.Unlock()
	st := s.st
	st.resp.load(h)
	if v, ok := s.callable(phaseResponseHeaders); !ok {
		return v
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
	return s.run(inst.fn.responseHeaders, phaseResponseHeaders, uint64(len(st.resp.pairs)), endOfStream)
}

// OnResponseBody runs proxy_on_response_body on the next chunk of the response body; ResponseBody returns what to
// forward. When the plugin returns Pause the host keeps the body and the next call appends to it.
func (s *Stream) OnResponseBody(chunk []byte, endOfStream bool) Verdict {
	if s.closed {
		return Verdict{}
	}
	inst := s.enter()
	defer inst.mu.Unlock()
	st := s.st
	return s.onBody(inst.fn.responseBody, phaseResponseBody, &st.respBody, &st.respBytes, st.respBuffering,
		&st.respBodyAvail, chunk, endOfStream)
}

// onBody is the common part of OnRequestBody and OnResponseBody, called with the instance locked: it keeps the
// body (appending while the plugin buffers), counts its bytes for the size properties, and runs the callback fn
// when the module exports it.
func (s *Stream) onBody(fn api.Function, p phase, body *[]byte, total *int64, buffering bool, avail *bool,
	chunk []byte, endOfStream bool) Verdict {
	if !buffering || s.failed {
		*body = (*body)[:0]
	}
	*body = append(*body, chunk...)
	*total += int64(len(chunk))
	if fn == nil {
		return Verdict{}
	}
	if v, ok := s.callable(p); !ok {
		return v
	}
	*avail = true
	if v, failed := s.ensureCreated(); failed {
		return v
	}
	return s.run(fn, p, uint64(len(*body)), endOfStream)
}

// RequestHeaders returns the request headers after the plugin's changes (before a failing callback's changes
// under FailOpen), with lowercase names. The slice is the caller's own when nothing changed, a copy otherwise.
func (s *Stream) RequestHeaders() [][2]string {
	if s.closed {
		return nil
	}
	inst := s.enter()
	defer inst.mu.Unlock()
	return s.st.req.export()
}

// ResponseHeaders returns the response headers after the plugin's changes, like RequestHeaders.
func (s *Stream) ResponseHeaders() [][2]string {
	if s.closed {
		return nil
	}
	inst := s.enter()
	defer inst.mu.Unlock()
	return s.st.resp.export()
}

// RequestBody returns the request body to forward after OnRequestBody: the chunk as the plugin left it, or all
// chunks held since the plugin started pausing. It is valid until the next call on the stream.
func (s *Stream) RequestBody() []byte {
	if s.closed {
		return nil
	}
	inst := s.enter()
	defer inst.mu.Unlock()
	return s.st.reqBody
}

// ResponseBody returns the response body to forward after OnResponseBody, like RequestBody.
func (s *Stream) ResponseBody() []byte {
	if s.closed {
		return nil
	}
	inst := s.enter()
	defer inst.mu.Unlock()
	return s.st.respBody
}

func (m *headerMap) export() [][2]string {
	if m.cur < 0 {
		return m.pairs
	}
	return append([][2]string(nil), m.pairs...)
}

// Close ends the stream in Envoy's order, proxy_on_log (the access log), then proxy_on_done and proxy_on_delete,
// and unpins it from its instance. A stream whose plugin failed, or whose instance died, has no context left; Close
// only counts it and leaves the dead instance alone.
func (s *Stream) Close() {
	if s.closed {
		return
	}
	s.closed = true
	inst, st := s.inst, s.st
	if !s.failed && !inst.dead.Load() {
		inst.mu.Lock()
		if !inst.dead.Load() {
			inst.cur = st
			st.reqMutable, st.respMutable, st.reqBodyAvail, st.respBodyAvail = false, false, false, false
			err := s.finish()
			if err == nil {
				err = inst.idleWork()
			}
			if err != nil {
				s.h.failed(inst, err)
			} else {
				inst.trackMemory()
			}
			inst.cur = nil
		}
		inst.mu.Unlock()
	}
	s.st = nil
	st.release()
	inst.active.Add(-1)
	s.h.leave()
}

func (s *Stream) finish() error {
	inst, st := s.inst, s.st
	if !st.created {
		// Envoy creates the context from its access log hook even for a stream the filter never saw.
		if err := s.createContext(); err != nil {
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
	inst.streams.remove(st.id)
	return err
}

// createContext runs proxy_on_context_create for the stream and registers the context with its instance, where
// proxy_set_effective_context finds it.
func (s *Stream) createContext() error {
	st := s.st
	st.created = true
	s.inst.streams.put(st.id, st)
	_, err := s.inst.call2(s.inst.fn.contextCreate, phaseContextCreate, uint64(st.id), rootContextID)
	return err
}

// ensureCreated creates the plugin's context for the stream before its first callback.
func (s *Stream) ensureCreated() (Verdict, bool) {
	st := s.st
	if st.created {
		return Verdict{}, false
	}
	st.req.begin()
	st.resp.begin()
	if err := s.createContext(); err != nil {
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

// fail applies the failure policy to a stream whose plugin just failed; the caller holds the instance. The
// failing callback's header changes are undone, the instance is retired (and replaced in the background), and
// later callbacks of the stream are skipped, as Envoy skips a failed VM.
func (s *Stream) fail(err error) Verdict {
	st := s.st
	st.req.rollback()
	st.resp.rollback()
	s.h.failed(s.inst, err)
	return s.policy(err)
}

// orphaned applies the failure policy to a stream whose instance died in another stream's callback: the plugin
// is not called, and the stream is answered as the failing one was.
func (s *Stream) orphaned(ph phase) Verdict {
	return s.policy(fmt.Errorf("wasmhost: %s: not run, the plugin failed in another stream of the same instance: %w", ph, s.inst.failErr))
}

func (s *Stream) policy(err error) Verdict {
	st := s.st
	st.local = nil
	s.failed = true
	if s.h.opts.FailurePolicy == FailOpen {
		s.h.stats.failOpen.Add(1)
		return Verdict{Err: err}
	}
	s.h.stats.failClosed.Add(1)
	status := s.h.opts.Platform.failStatus()
	st.status, st.codeDetails = status, failStreamDetails
	return Verdict{Err: err, Local: &LocalResponse{Status: status, Details: failStreamDetails, GRPCStatus: grpcUnavailable}}
}

// Envoy's failStream: a 503 with no body, details "wasm_fail_stream" and, for gRPC, status UNAVAILABLE (14).
const (
	failStreamDetails = "wasm_fail_stream"
	grpcUnavailable   = 14
)
