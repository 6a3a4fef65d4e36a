package host

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

// The "env" host module: the Proxy-Wasm host functions. They are registered once per runtime and find the calling
// instance through the context of the call (see instanceContext). Each follows proxy-wasm-cpp-host's exports.cc and
// Envoy's Context for its checks and their order: an out-of-range enum argument is BadArgument, memory outside the
// guest's is InvalidMemoryAccess (never a host panic), and a map, buffer or feature the current callback cannot
// reach gets the status Envoy gives in the same situation.

type hostFunc struct {
	name   string
	params []string // parameter names from the spec; an "i64:" prefix marks an i64 parameter, the rest are i32
	fn     hostcall
}

// hostcall is one host function: it reads its arguments from stack, acts for inst, and returns the status the
// guest receives as the call's result.
type hostcall func(inst *instance, stack []uint64) abi.Status

// goModuleFunc adapts a host function to wazero: it finds the calling instance in the context, traps when a
// restricted callback forbids the call (restricted.go), and stores the status.
func (f hostFunc) goModuleFunc() api.GoModuleFunc {
	name, fn := "env."+f.name, f.fn
	return func(ctx context.Context, _ api.Module, stack []uint64) {
		inst := instanceOf(ctx)
		inst.checkRestricted(name)
		stack[0] = uint64(fn(inst, stack))
	}
}

var hostFunctions = []hostFunc{
	{"proxy_log", []string{"log_level", "message_data", "message_size"}, hostLog},
	{"proxy_get_log_level", []string{"return_log_level"}, hostGetLogLevel},
	{"proxy_get_status", []string{"return_status_code", "return_status_message_data", "return_status_message_size"}, hostGetStatus},
	{"proxy_set_property", []string{"property_path_data", "property_path_size", "property_value_data", "property_value_size"}, hostSetProperty},
	{"proxy_get_property", []string{"property_path_data", "property_path_size", "return_property_value_data", "return_property_value_size"}, hostGetProperty},
	{"proxy_send_local_response", []string{"response_code", "response_code_details_data", "response_code_details_size", "response_body_data", "response_body_size", "additional_headers_map_data", "additional_headers_size", "grpc_status"}, hostSendLocalResponse},
	{"proxy_get_shared_data", []string{"key_data", "key_size", "return_value_data", "return_value_size", "return_cas"}, hostGetSharedData},
	{"proxy_set_shared_data", []string{"key_data", "key_size", "value_data", "value_size", "cas"}, hostSetSharedData},
	{"proxy_register_shared_queue", []string{"queue_name_data", "queue_name_size", "return_queue_id"}, hostRegisterSharedQueue},
	{"proxy_resolve_shared_queue", []string{"vm_id_data", "vm_id_size", "queue_name_data", "queue_name_size", "return_queue_id"}, hostResolveSharedQueue},
	{"proxy_enqueue_shared_queue", []string{"queue_id", "value_data", "value_size"}, hostEnqueueSharedQueue},
	{"proxy_dequeue_shared_queue", []string{"queue_id", "return_value_data", "return_value_size"}, hostDequeueSharedQueue},
	{"proxy_get_header_map_value", []string{"map_type", "key_data", "key_size", "return_value_data", "return_value_size"}, hostGetHeaderMapValue},
	{"proxy_add_header_map_value", []string{"map_type", "key_data", "key_size", "value_data", "value_size"}, hostAddHeaderMapValue},
	{"proxy_replace_header_map_value", []string{"map_type", "key_data", "key_size", "value_data", "value_size"}, hostReplaceHeaderMapValue},
	{"proxy_remove_header_map_value", []string{"map_type", "key_data", "key_size"}, hostRemoveHeaderMapValue},
	{"proxy_get_header_map_pairs", []string{"map_type", "return_map_data", "return_map_size"}, hostGetHeaderMapPairs},
	{"proxy_set_header_map_pairs", []string{"map_type", "map_data", "map_size"}, hostSetHeaderMapPairs},
	{"proxy_get_header_map_size", []string{"map_type", "return_map_size"}, hostGetHeaderMapSize},
	{"proxy_get_buffer_status", []string{"buffer_type", "return_buffer_size", "return_unused"}, hostGetBufferStatus},
	{"proxy_get_buffer_bytes", []string{"buffer_type", "start", "max_size", "return_buffer_data", "return_buffer_size"}, hostGetBufferBytes},
	{"proxy_set_buffer_bytes", []string{"buffer_type", "start", "size", "buffer_data", "buffer_size"}, hostSetBufferBytes},
	{"proxy_http_call", []string{"upstream_name_data", "upstream_name_size", "headers_map_data", "headers_map_size", "body_data", "body_size", "trailers_map_data", "trailers_map_size", "timeout_milliseconds", "return_callout_id"}, hostHTTPCall},
	{"proxy_grpc_call", []string{"grpc_service_data", "grpc_service_size", "service_name_data", "service_name_size", "method_name_data", "method_name_size", "initial_metadata_map_data", "initial_metadata_map_size", "grpc_message_data", "grpc_message_size", "timeout_milliseconds", "return_callout_id"}, hostGrpcCall},
	{"proxy_grpc_stream", []string{"grpc_service_data", "grpc_service_size", "service_name_data", "service_name_size", "method_name_data", "method_name_size", "initial_metadata_map_data", "initial_metadata_map_size", "return_stream_id"}, hostGrpcStream},
	{"proxy_grpc_send", []string{"stream_id", "grpc_message_data", "grpc_message_size", "end_stream"}, hostGrpcSend},
	{"proxy_grpc_cancel", []string{"callout_id"}, hostGrpcToken},
	{"proxy_grpc_close", []string{"callout_id"}, hostGrpcToken},
	{"proxy_set_tick_period_milliseconds", []string{"tick_period"}, hostSetTickPeriod},
	{"proxy_get_current_time_nanoseconds", []string{"return_time"}, hostGetCurrentTime},
	{"proxy_define_metric", []string{"metric_type", "metric_name_data", "metric_name_size", "return_metric_id"}, hostDefineMetric},
	{"proxy_increment_metric", []string{"metric_id", "i64:offset"}, hostIncrementMetric},
	{"proxy_record_metric", []string{"metric_id", "i64:value"}, hostRecordMetric},
	{"proxy_get_metric", []string{"metric_id", "return_metric_value"}, hostGetMetric},
	{"proxy_set_effective_context", []string{"context_id"}, hostSetEffectiveContext},
	{"proxy_done", nil, hostDone},
	{"proxy_call_foreign_function", []string{"function_name_data", "function_name_size", "parameters_data", "parameters_size", "return_results_data", "return_results_size"}, hostCallForeignFunction},
	{"proxy_get_configuration", []string{"return_buffer_data", "return_buffer_size"}, hostGetConfiguration},
	{"proxy_continue_request", nil, hostContinueRequest},
	{"proxy_continue_response", nil, hostContinueResponse},
	{"proxy_clear_route_cache", nil, hostClearRouteCache},
	{"proxy_continue_stream", []string{"stream_type"}, hostContinueStream},
	{"proxy_close_stream", []string{"stream_type"}, hostCloseStream},
}

// instantiateEnv registers the host functions as the "env" module of r; those the platform refuses answer
// Unimplemented.
func instantiateEnv(ctx context.Context, r wazero.Runtime, p *Platform) error {
	b := r.NewHostModuleBuilder("env")
	for _, f := range hostFunctions {
		fn := p.hostcall(f)
		types := make([]api.ValueType, len(f.params))
		names := make([]string, len(f.params))
		for i, p := range f.params {
			types[i] = api.ValueTypeI32
			if n, ok := strings.CutPrefix(p, "i64:"); ok {
				types[i], p = api.ValueTypeI64, n
			}
			names[i] = p
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(hostFunc{name: f.name, fn: fn}.goModuleFunc(), types, []api.ValueType{api.ValueTypeI32}).
			WithParameterNames(names...).
			WithResultNames("call_result").
			Export(f.name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasmhost: host functions: %w", err)
	}
	return nil
}

func instanceOf(ctx context.Context) *instance { return ctx.(*instanceContext).inst }

func arg(stack []uint64, i int) uint32 { return uint32(stack[i]) }

// Logging.

func slogLevel(l abi.LogLevel) slog.Level {
	switch l {
	case abi.LogTrace:
		return slog.LevelDebug - 4
	case abi.LogDebug:
		return slog.LevelDebug
	case abi.LogInfo:
		return slog.LevelInfo
	case abi.LogWarn:
		return slog.LevelWarn
	case abi.LogError:
		return slog.LevelError
	}
	return slog.LevelError + 4
}

func hostLog(inst *instance, stack []uint64) abi.Status {
	level := arg(stack, 0)
	// Envoy rejects levels above Max and crashes on Max ("off") itself; both are a bad argument here.
	if level >= abi.LogLevelMax {
		return abi.StatusBadArgument
	}
	msg, ok := inst.mem.Read(arg(stack, 1), arg(stack, 2))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	lvl := slogLevel(level)
	if l := inst.logger(); l.Enabled(context.Background(), lvl) {
		l.Log(context.Background(), lvl, string(msg), "context_id", inst.contextID())
	}
	return abi.StatusOK
}

// contextID is the id of the context the running callback acts on, for log records.
func (inst *instance) contextID() uint32 {
	if st := inst.currentStream(); st != nil {
		return st.id
	}
	return rootContextID
}

func hostGetLogLevel(inst *instance, stack []uint64) abi.Status {
	level := abi.LogLevel(abi.LogLevelMax)
	for l := abi.LogLevel(abi.LogTrace); l < abi.LogLevelMax; l++ {
		if inst.logger().Enabled(context.Background(), slogLevel(l)) {
			level = l
			break
		}
	}
	if !inst.mem.WriteUint32Le(arg(stack, 0), level) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// hostGetStatus reports the status of the last HTTP or gRPC callout. No callout ever completes here, so like Envoy
// without one it reports code 0 and an empty message.
func hostGetStatus(inst *instance, stack []uint64) abi.Status {
	if !inst.mem.WriteUint32Le(arg(stack, 0), 0) || !inst.copyOut(nil, arg(stack, 1), arg(stack, 2)) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// Properties.

func hostGetProperty(inst *instance, stack []uint64) abi.Status {
	path, ok := inst.mem.Read(arg(stack, 0), arg(stack, 1))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	if !inst.h.opts.Platform.propertyAllowed(path) {
		return abi.StatusNotFound
	}
	value, status := inst.property(path)
	if status != abi.StatusOK {
		return status
	}
	if !inst.copyOut(value, arg(stack, 2), arg(stack, 3)) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// hostSetProperty stores a value the way Envoy does: as filter state "wasm.<path>" of the stream, readable later
// through get_property with the path's first segment. The root context has no stream, so nothing is found.
func hostSetProperty(inst *instance, stack []uint64) abi.Status {
	path, ok1 := inst.mem.Read(arg(stack, 0), arg(stack, 1))
	value, ok2 := inst.mem.Read(arg(stack, 2), arg(stack, 3))
	if !ok1 || !ok2 {
		return abi.StatusInvalidMemoryAccess
	}
	st := inst.currentStream()
	if st == nil {
		return abi.StatusNotFound
	}
	if st.props == nil {
		st.props = map[string][]byte{}
	}
	st.props[string(path)] = append([]byte(nil), value...)
	return abi.StatusOK
}

// Local responses.

func hostSendLocalResponse(inst *instance, stack []uint64) abi.Status {
	details, ok1 := inst.mem.Read(arg(stack, 1), arg(stack, 2))
	body, ok2 := inst.mem.Read(arg(stack, 3), arg(stack, 4))
	headers, ok3 := inst.mem.Read(arg(stack, 5), arg(stack, 6))
	if !ok1 || !ok2 || !ok3 {
		return abi.StatusInvalidMemoryAccess
	}
	st := inst.currentStream()
	if st == nil || st.local != nil {
		// Envoy sends local replies through the stream's decoder callbacks: the root context has none, and a
		// second reply in the same callback is dropped once the first has been sent.
		return abi.StatusOK
	}
	lr := &LocalResponse{Status: int(arg(stack, 0)), GRPCStatus: -1}
	if g := int32(arg(stack, 7)); g >= 0 && g <= 16 {
		lr.GRPCStatus = int(g)
	}
	if len(body) > 0 {
		lr.Body = append([]byte(nil), body...)
	}
	lr.Details = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, string(details))
	hm := headerMap{kind: kindResponseHeaders}
	var out [][2]string
	for _, p := range parsePairs(inst.pairs, headers) {
		out = hm.addTo(out, lowerASCII(p[0]), p[1])
	}
	if len(lr.Body) > 0 {
		if _, ok := (&headerMap{pairs: out}).get("content-type"); !ok {
			out = append(out, [2]string{"content-type", "text/plain"})
		}
	}
	lr.Headers = out
	st.local = lr
	st.status, st.codeDetails = lr.Status, lr.Details
	inst.h.stats.localReplies.Add(1)
	return abi.StatusOK
}

// Shared data and queues.

func hostGetSharedData(inst *instance, stack []uint64) abi.Status {
	key, ok := inst.mem.Read(arg(stack, 0), arg(stack, 1))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	value, cas, status := inst.h.shared.get(string(key))
	if status != abi.StatusOK {
		return status
	}
	if !inst.copyOut(value, arg(stack, 2), arg(stack, 3)) || !inst.mem.WriteUint32Le(arg(stack, 4), cas) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

func hostSetSharedData(inst *instance, stack []uint64) abi.Status {
	key, ok1 := inst.mem.Read(arg(stack, 0), arg(stack, 1))
	value, ok2 := inst.mem.Read(arg(stack, 2), arg(stack, 3))
	if !ok1 || !ok2 {
		return abi.StatusInvalidMemoryAccess
	}
	return inst.h.shared.set(string(key), append([]byte(nil), value...), arg(stack, 4))
}

func hostRegisterSharedQueue(inst *instance, stack []uint64) abi.Status {
	name, ok := inst.mem.Read(arg(stack, 0), arg(stack, 1))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	tok := inst.h.queues.register(inst.h.opts.VMID, string(name), inst)
	if !inst.mem.WriteUint32Le(arg(stack, 2), tok) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

func hostResolveSharedQueue(inst *instance, stack []uint64) abi.Status {
	vmID, ok1 := inst.mem.Read(arg(stack, 0), arg(stack, 1))
	name, ok2 := inst.mem.Read(arg(stack, 2), arg(stack, 3))
	if !ok1 || !ok2 {
		return abi.StatusInvalidMemoryAccess
	}
	tok, status := inst.h.queues.resolve(string(vmID), string(name))
	if status != abi.StatusOK {
		return status
	}
	if !inst.mem.WriteUint32Le(arg(stack, 4), tok) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

func hostEnqueueSharedQueue(inst *instance, stack []uint64) abi.Status {
	value, ok := inst.mem.Read(arg(stack, 1), arg(stack, 2))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	owner, status := inst.h.queues.enqueue(arg(stack, 0), append([]byte(nil), value...))
	if status == abi.StatusOK && owner != nil {
		owner.notifyQueue(arg(stack, 0))
	}
	return status
}

func hostDequeueSharedQueue(inst *instance, stack []uint64) abi.Status {
	value, status := inst.h.queues.dequeue(arg(stack, 0))
	if status != abi.StatusOK {
		return status
	}
	if !inst.copyOut(value, arg(stack, 1), arg(stack, 2)) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// Header maps.

// constMap is Envoy's getConstMap: the map the plugin may read in the running callback, or nil.
func (inst *instance) constMap(t abi.MapType) *headerMap {
	st := inst.currentStream()
	if st == nil {
		return nil
	}
	switch t {
	case abi.MapRequestHeaders:
		return st.requestHeadersForProps()
	case abi.MapResponseHeaders:
		return st.responseHeadersForProps()
	}
	return nil
}

// mutableMap is Envoy's getMap: the map the plugin may change in the running callback, or nil. Trailers are not
// modelled by this host, so they are never available.
func (inst *instance) mutableMap(t abi.MapType) *headerMap {
	st := inst.currentStream()
	if st == nil || st.logPhase {
		return nil
	}
	switch t {
	case abi.MapRequestHeaders:
		if st.reqMutable && st.req.present {
			return &st.req
		}
	case abi.MapResponseHeaders:
		if st.respMutable && st.resp.present {
			return &st.resp
		}
	}
	return nil
}

// lookupKey finds the first value of a name given in guest memory, comparing case-insensitively without copying.
func (m *headerMap) lookupKey(key []byte) (string, bool) {
	if m.kind == kindRequestHeaders && equalFoldLower(key, "host") {
		return m.get(":authority")
	}
	for _, p := range m.pairs {
		if equalFoldLower(key, p[0]) {
			return p[1], true
		}
	}
	return "", false
}

// equalFoldLower reports whether b, lowercased, equals the lowercase string s.
func equalFoldLower(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// commonNames are header names plugins often add, replace or remove; keyName returns them without allocating.
var commonNames = [...]string{
	"set-cookie", "cookie", "content-type", "content-length", "cache-control", "location", "vary", "via",
	"user-agent", "x-forwarded-for", "x-request-id", ":status", ":path", ":authority",
}

// keyName returns the canonical, stored form of a header name given in guest memory.
func keyName(kind mapKind, key []byte) string {
	if kind == kindRequestHeaders && equalFoldLower(key, "host") {
		return ":authority"
	}
	if len(key) == 0 {
		return ""
	}
	for _, name := range commonNames {
		if equalFoldLower(key, name) {
			return name
		}
	}
	b := make([]byte, len(key))
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return unsafe.String(&b[0], len(b))
}

func hostGetHeaderMapValue(inst *instance, stack []uint64) abi.Status {
	t := arg(stack, 0)
	if t > abi.MapTypeMax {
		return abi.StatusBadArgument
	}
	key, ok := inst.mem.Read(arg(stack, 1), arg(stack, 2))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	m := inst.constMap(t)
	if m == nil {
		// In the access log phase a missing map reads as "not found"; elsewhere the map is not available in
		// this callback (Envoy: "requested map type is not currently available").
		if st := inst.currentStream(); st != nil && st.logPhase {
			return abi.StatusNotFound
		}
		return abi.StatusBadArgument
	}
	value, found := m.lookupKey(key)
	if !found {
		return abi.StatusNotFound
	}
	if !inst.copyOutString(value, arg(stack, 3), arg(stack, 4)) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

func hostAddHeaderMapValue(inst *instance, stack []uint64) abi.Status {
	return headerWrite(inst, stack, true, func(m *headerMap, name, value string) { m.add(name, value) })
}

func hostReplaceHeaderMapValue(inst *instance, stack []uint64) abi.Status {
	return headerWrite(inst, stack, true, func(m *headerMap, name, value string) { m.replace(name, value) })
}

func hostRemoveHeaderMapValue(inst *instance, stack []uint64) abi.Status {
	return headerWrite(inst, stack, false, func(m *headerMap, name, _ string) { m.remove(name) })
}

// headerWrite is the common part of add, replace and remove: argument checks in Envoy's order (map type, memory,
// then availability of the map).
func headerWrite(inst *instance, stack []uint64, hasValue bool, op func(m *headerMap, name, value string)) abi.Status {
	t := arg(stack, 0)
	if t > abi.MapTypeMax {
		return abi.StatusBadArgument
	}
	key, ok := inst.mem.Read(arg(stack, 1), arg(stack, 2))
	var value []byte
	if ok && hasValue {
		value, ok = inst.mem.Read(arg(stack, 3), arg(stack, 4))
	}
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	m := inst.mutableMap(t)
	if m == nil {
		return abi.StatusBadArgument
	}
	op(m, keyName(m.kind, key), string(value))
	return abi.StatusOK
}

func hostGetHeaderMapPairs(inst *instance, stack []uint64) abi.Status {
	t := arg(stack, 0)
	if t > abi.MapTypeMax {
		return abi.StatusBadArgument
	}
	var pairs [][2]string
	if m := inst.constMap(t); m != nil {
		pairs = m.pairs
	}
	if len(pairs) == 0 {
		if !inst.copyOut(nil, arg(stack, 1), arg(stack, 2)) {
			return abi.StatusInvalidMemoryAccess
		}
		return abi.StatusOK
	}
	size := uint32(pairsSize(pairs))
	ptr, view, ok := inst.alloc(size)
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	marshalPairs(view, pairs)
	if !inst.mem.WriteUint32Le(arg(stack, 1), ptr) || !inst.mem.WriteUint32Le(arg(stack, 2), size) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

func hostSetHeaderMapPairs(inst *instance, stack []uint64) abi.Status {
	t := arg(stack, 0)
	if t > abi.MapTypeMax {
		return abi.StatusBadArgument
	}
	data, ok := inst.mem.Read(arg(stack, 1), arg(stack, 2))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	m := inst.mutableMap(t)
	if m == nil {
		return abi.StatusBadArgument
	}
	// Like proxy-wasm-cpp-host, a malformed map reads as an empty one: the call clears the headers.
	inst.pairs = parsePairs(inst.pairs, data)
	m.setPairs(inst.pairs)
	clear(inst.pairs)
	return abi.StatusOK
}

func hostGetHeaderMapSize(inst *instance, stack []uint64) abi.Status {
	t := arg(stack, 0)
	if t > abi.MapTypeMax {
		return abi.StatusBadArgument
	}
	m := inst.mutableMap(t)
	if m == nil {
		return abi.StatusBadArgument
	}
	if !inst.mem.WriteUint32Le(arg(stack, 1), uint32(m.byteSize())) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// Buffers.

// buffer is Envoy's getBuffer for the running callback. found=false is NotFound. A body is writable (w != nil)
// only in its own callback, or while the plugin keeps it paused; elsewhere it reads as empty and refuses writes,
// like Envoy's buffer wrapper around no body.
func (inst *instance) buffer(t abi.BufferType) (data []byte, w *[]byte, found bool) {
	st := inst.currentStream()
	switch t {
	case abi.BufferRequestBody:
		if st != nil && st.reqBodyAvail {
			return st.reqBody, &st.reqBody, true
		}
		return nil, nil, true
	case abi.BufferResponseBody:
		if st != nil && st.respBodyAvail {
			return st.respBody, &st.respBody, true
		}
		return nil, nil, true
	case abi.BufferVMConfiguration:
		return inst.h.opts.VMConfig, nil, true
	case abi.BufferPluginConfiguration:
		if inst.phase == phaseRootCreate || inst.phase == phaseConfigure {
			return inst.h.opts.PluginConfig, nil, true
		}
		return nil, nil, false
	case abi.BufferHTTPCallResponseBody:
		return nil, nil, false
	}
	return nil, nil, true
}

// bufferArg checks the buffer type in argument 0 and finds that buffer, in Envoy's order (BadArgument for an unknown
// type, then NotFound for a buffer this callback cannot see).
func bufferArg(inst *instance, stack []uint64) (data []byte, w *[]byte, st abi.Status) {
	t := arg(stack, 0)
	if t > abi.BufferTypeMax {
		return nil, nil, abi.StatusBadArgument
	}
	data, w, found := inst.buffer(t)
	if !found {
		return nil, nil, abi.StatusNotFound
	}
	return data, w, abi.StatusOK
}

func hostGetBufferStatus(inst *instance, stack []uint64) abi.Status {
	data, _, st := bufferArg(inst, stack)
	if st != abi.StatusOK {
		return st
	}
	if !inst.mem.WriteUint32Le(arg(stack, 1), uint32(len(data))) || !inst.mem.WriteUint32Le(arg(stack, 2), 0) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

func hostGetBufferBytes(inst *instance, stack []uint64) abi.Status {
	data, _, st := bufferArg(inst, stack)
	if st != abi.StatusOK {
		return st
	}
	// proxy-wasm-cpp-host clamps start and length to the buffer (its overflow check cannot trigger for 32-bit
	// arguments, which it widens to 64 bits).
	start, length := uint64(arg(stack, 1)), uint64(arg(stack, 2))
	size := uint64(len(data))
	switch {
	case start > size:
		length = 0
	case start+length > size:
		length = size - start
	}
	var chunk []byte
	if length > 0 {
		chunk = data[start : start+length]
	}
	if !inst.copyOut(chunk, arg(stack, 3), arg(stack, 4)) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

func hostSetBufferBytes(inst *instance, stack []uint64) abi.Status {
	_, w, st := bufferArg(inst, stack)
	if st != abi.StatusOK {
		return st
	}
	data, ok := inst.mem.Read(arg(stack, 3), arg(stack, 4))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	if w == nil {
		return abi.StatusBadArgument
	}
	// Envoy's Buffer::copyFrom: start 0 drains size bytes and prepends the data (size 0 prepends, a size
	// covering the buffer replaces it), a start at or past the end appends, anything else is refused.
	body := *w
	start, size := int(arg(stack, 1)), int(arg(stack, 2))
	switch {
	case start == 0:
		drain := min(size, len(body))
		next := make([]byte, 0, len(data)+len(body)-drain)
		next = append(next, data...)
		*w = append(next, body[drain:]...)
	case start >= len(body):
		*w = append(body, data...)
	default:
		return abi.StatusBadArgument
	}
	return abi.StatusOK
}

// Callouts. This host has no clusters, so calls fail the way Envoy's do for an unknown cluster, after the same
// memory checks.

func readAll(inst *instance, stack []uint64, pairs ...int) bool {
	for _, i := range pairs {
		if _, ok := inst.mem.Read(arg(stack, i), arg(stack, i+1)); !ok {
			return false
		}
	}
	return true
}

func hostHTTPCall(inst *instance, stack []uint64) abi.Status {
	if !readAll(inst, stack, 0, 2, 4, 6) || !inst.mem.WriteUint32Le(arg(stack, 9), 0) {
		return abi.StatusInvalidMemoryAccess
	}
	// Envoy: a negative timeout or a cluster it does not know is a bad argument.
	return abi.StatusBadArgument
}

func hostGrpcCall(inst *instance, stack []uint64) abi.Status {
	if !readAll(inst, stack, 0, 2, 4, 6, 8) {
		return abi.StatusInvalidMemoryAccess
	}
	// Envoy: a service that names no known cluster is a parse failure.
	return abi.StatusParseFailure
}

func hostGrpcStream(inst *instance, stack []uint64) abi.Status {
	if !readAll(inst, stack, 0, 2, 4, 6) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusParseFailure
}

func hostGrpcSend(inst *instance, stack []uint64) abi.Status {
	if !readAll(inst, stack, 1) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusNotFound
}

func hostGrpcToken(*instance, []uint64) abi.Status {
	return abi.StatusNotFound
}

// Timers and time.

// hostSetTickPeriod stores the period; ticks are delivered when a stream of the instance closes (see
// instance.idleWork).
func hostSetTickPeriod(inst *instance, stack []uint64) abi.Status {
	inst.tickPeriod = time.Duration(arg(stack, 0)) * time.Millisecond
	inst.lastTick = inst.h.opts.Now()
	return abi.StatusOK
}

func hostGetCurrentTime(inst *instance, stack []uint64) abi.Status {
	if !inst.mem.WriteUint64Le(arg(stack, 0), uint64(inst.h.opts.Now().UnixNano())) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// Metrics.

func hostDefineMetric(inst *instance, stack []uint64) abi.Status {
	name, ok := inst.mem.Read(arg(stack, 1), arg(stack, 2))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	id, status := inst.h.metrics.define(arg(stack, 0), string(name))
	if status != abi.StatusOK {
		return status
	}
	if !inst.mem.WriteUint32Le(arg(stack, 3), id) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

func hostIncrementMetric(inst *instance, stack []uint64) abi.Status {
	return inst.h.metrics.increment(arg(stack, 0), int64(stack[1]))
}

func hostRecordMetric(inst *instance, stack []uint64) abi.Status {
	return inst.h.metrics.record(arg(stack, 0), stack[1])
}

func hostGetMetric(inst *instance, stack []uint64) abi.Status {
	v, status := inst.h.metrics.get(arg(stack, 0))
	if status != abi.StatusOK {
		return status
	}
	if !inst.mem.WriteUint64Le(arg(stack, 1), v) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// Contexts.

func hostSetEffectiveContext(inst *instance, stack []uint64) abi.Status {
	id := arg(stack, 0)
	// Like proxy-wasm-cpp-host, any live context of this instance (VM) can be chosen: the root context or a
	// stream's, created and not yet deleted, whichever stream the running callback belongs to.
	var st *streamState
	if id != rootContextID {
		var ok bool
		if st, ok = inst.streams.get(id); !ok {
			return abi.StatusBadArgument
		}
	}
	inst.effective, inst.effSt = id, st
	return abi.StatusOK
}

// hostDone is proxy_done: only a root context whose proxy_on_done returned false is waiting for it.
func hostDone(inst *instance, stack []uint64) abi.Status {
	if !inst.pendingDone {
		return abi.StatusNotFound
	}
	inst.pendingDone = false
	return abi.StatusOK
}

// hostUnimplemented stands for a host function the platform refuses: proxy-wasm-cpp-host's ContextBase answers
// Unimplemented for every function its embedder does not provide, before looking at the arguments.
func hostUnimplemented(*instance, []uint64) abi.Status {
	return abi.StatusUnimplemented
}

// hostCallForeignFunction: this host registers no foreign functions.
func hostCallForeignFunction(inst *instance, stack []uint64) abi.Status {
	if !readAll(inst, stack, 0, 2) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusNotFound
}

// hostGetConfiguration is ABI 0.1.0's accessor: the plugin configuration while configuring, the VM
// configuration otherwise. Modules of ABI 0.2.x cannot import it (see CheckCompatibility).
func hostGetConfiguration(inst *instance, stack []uint64) abi.Status {
	cfg := inst.h.opts.VMConfig
	if inst.phase == phaseConfigure {
		cfg = inst.h.opts.PluginConfig
	}
	if !inst.copyOut(cfg, arg(stack, 0), arg(stack, 1)) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// Stream control.

// continueStream is Envoy's Context::continueStream. Resuming either HTTP direction ends the plugin's access to the
// request's headers and body, as Envoy clears them (it does so for both directions).
func (inst *instance) continueStream(t abi.StreamType) abi.Status {
	switch t {
	case abi.StreamRequest, abi.StreamResponse:
		if st := inst.currentStream(); st != nil {
			st.reqMutable, st.reqBodyAvail, st.reqBuffering = false, false, false
		}
		return abi.StatusOK
	case abi.StreamDownstream:
		return abi.StatusOK
	case abi.StreamUpstream:
		return abi.StatusUnimplemented
	}
	return abi.StatusBadArgument
}

func hostContinueStream(inst *instance, stack []uint64) abi.Status {
	return inst.continueStream(arg(stack, 0))
}

func hostContinueRequest(inst *instance, stack []uint64) abi.Status {
	return inst.continueStream(abi.StreamRequest)
}

func hostContinueResponse(inst *instance, stack []uint64) abi.Status {
	return inst.continueStream(abi.StreamResponse)
}

func hostClearRouteCache(*instance, []uint64) abi.Status {
	return abi.StatusOK
}

// hostCloseStream is Envoy's closeStream: every direction is accepted; for the HTTP ones the stream is reset, which
// the caller learns from Verdict.Reset.
func hostCloseStream(inst *instance, stack []uint64) abi.Status {
	t := arg(stack, 0)
	if t > abi.StreamTypeMax {
		return abi.StatusBadArgument
	}
	if st := inst.currentStream(); st != nil && (t == abi.StreamRequest || t == abi.StreamResponse) {
		st.reset = true
	}
	return abi.StatusOK
}
