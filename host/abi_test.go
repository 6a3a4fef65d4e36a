package host

import (
	"encoding/binary"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

// ABI conformance: every host function is called directly, with arguments a plugin could pass, against the memory
// of a real instance (the minimal .wat guest), and its status and effects are compared with Envoy's. The instance
// is put into the state of a given callback by hand, which is exactly the state the host's own callbacks set up.

// oob is an address past the end of the guest's memory.
const oob = 0xfffffff0

var fixedNow = time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)

type abiEnv struct {
	t    *testing.T
	h    *Host
	s    *Stream
	inst *instance
	rec  *logRecorder
}

func newABIEnv(t *testing.T) *abiEnv {
	h, rec := newHost(t, Options{
		Module: wat(t, "minimal"), PluginConfig: []byte("plugin-config"), VMConfig: []byte("vm-config"),
		PluginName: "p", RootID: "root", VMID: "vm", NodeID: "node-1",
		Now: func() time.Time { return fixedNow },
	})
	s := newStream(t, h)
	e := &abiEnv{t: t, h: h, s: s, inst: s.inst, rec: rec}
	t.Cleanup(func() {
		e.inst.phase, e.inst.effective, e.inst.effSt = phaseIdle, 0, nil
		s.Close()
	})
	return e
}

// inRequestHeaders puts the instance into proxy_on_request_headers of its stream with the given headers.
func (e *abiEnv) inRequestHeaders(h [][2]string) *streamState {
	st := e.s.st
	st.created = true
	e.inst.streams.put(st.id, st)
	e.inst.cur = st
	st.req.load(h)
	st.reqMutable = true
	st.req.begin()
	e.inst.phase = phaseRequestHeaders
	return st
}

// call runs fn the way the guest reaches it: through the wazero adapter, with the instance found in the context.
func (e *abiEnv) call(fn hostcall, args ...uint64) abi.Status {
	e.t.Helper()
	stack := make([]uint64, max(len(args), 1))
	copy(stack, args)
	hostFunc{name: "proxy_test", fn: fn}.goModuleFunc()(e.inst.ctx, e.inst.mod, stack)
	return abi.Status(stack[0])
}

// put copies b into guest memory and returns its address and length as call arguments.
func (e *abiEnv) put(b []byte) (uint64, uint64) {
	e.t.Helper()
	if len(b) == 0 {
		return 0, 0
	}
	ptr, view, ok := e.inst.alloc(uint32(len(b)))
	if !ok {
		e.t.Fatal("alloc failed")
	}
	copy(view, b)
	return uint64(ptr), uint64(len(b))
}

func (e *abiEnv) putStr(s string) (uint64, uint64) { return e.put([]byte(s)) }

// slot allocates n bytes for return values and returns their address.
func (e *abiEnv) slot(n uint32) uint64 {
	ptr, view, ok := e.inst.alloc(n)
	if !ok {
		e.t.Fatal("alloc failed")
	}
	clear(view)
	return uint64(ptr)
}

func (e *abiEnv) u32(ptr uint64) uint32 {
	v, ok := e.inst.mem.ReadUint32Le(uint32(ptr))
	if !ok {
		e.t.Fatalf("read at %d", ptr)
	}
	return v
}

func (e *abiEnv) u64(ptr uint64) uint64 {
	v, ok := e.inst.mem.ReadUint64Le(uint32(ptr))
	if !ok {
		e.t.Fatalf("read at %d", ptr)
	}
	return v
}

// returned reads a value the host returned through a (pointer, size) pair of slots at ptrPtr and ptrPtr+4.
func (e *abiEnv) returned(ptrPtr uint64) []byte {
	ptr, size := e.u32(ptrPtr), e.u32(ptrPtr+4)
	if ptr == 0 {
		if size != 0 {
			e.t.Fatalf("null pointer with size %d", size)
		}
		return nil
	}
	b, ok := e.inst.mem.Read(ptr, size)
	if !ok {
		e.t.Fatalf("returned block %d+%d outside memory", ptr, size)
	}
	return slices.Clone(b)
}

func (e *abiEnv) expect(what string, got, want abi.Status) {
	e.t.Helper()
	if got != want {
		e.t.Errorf("%s: status %d, want %d", what, got, want)
	}
}

func serialize(pairs [][2]string) []byte {
	b := make([]byte, pairsSize(pairs))
	marshalPairs(b, pairs)
	return b
}

func TestABILog(t *testing.T) {
	e := newABIEnv(t)
	msg, n := e.putStr("hello from the plugin")
	e.expect("valid", e.call(hostLog, uint64(abi.LogWarn), msg, n), abi.StatusOK)
	if got := e.rec.messages("hello from the plugin"); len(got) != 1 || got[0][:4] != "WARN" {
		t.Errorf("logged %q", got)
	}
	e.expect("level Max", e.call(hostLog, uint64(abi.LogLevelMax), msg, n), abi.StatusBadArgument)
	e.expect("level 99", e.call(hostLog, 99, msg, n), abi.StatusBadArgument)
	e.expect("message outside memory", e.call(hostLog, uint64(abi.LogInfo), oob, 64), abi.StatusInvalidMemoryAccess)
	e.expect("empty message", e.call(hostLog, uint64(abi.LogInfo), 0, 0), abi.StatusOK)

	out := e.slot(4)
	e.expect("get level", e.call(hostGetLogLevel, out), abi.StatusOK)
	if got := e.u32(out); got != abi.LogTrace {
		t.Errorf("log level = %d, want trace (the test logger takes everything)", got)
	}
	e.rec.level = slog.LevelWarn
	e.call(hostGetLogLevel, out)
	if got := e.u32(out); got != abi.LogWarn {
		t.Errorf("log level = %d, want warn", got)
	}
	e.expect("get level outside memory", e.call(hostGetLogLevel, oob), abi.StatusInvalidMemoryAccess)
}

func TestABIGetStatus(t *testing.T) {
	e := newABIEnv(t)
	code, ret := e.slot(4), e.slot(8)
	e.expect("valid", e.call(hostGetStatus, code, ret, ret+4), abi.StatusOK)
	if e.u32(code) != 0 || e.returned(ret) != nil {
		t.Errorf("status = %d %q", e.u32(code), e.returned(ret))
	}
	e.expect("outside memory", e.call(hostGetStatus, oob, ret, ret+4), abi.StatusInvalidMemoryAccess)
}

func TestABIProperties(t *testing.T) {
	e := newABIEnv(t)
	ret := e.slot(8)
	get := func(path string) ([]byte, abi.Status) {
		p, n := e.putStr(path)
		s := e.call(hostGetProperty, p, n, ret, ret+4)
		if s != abi.StatusOK {
			return nil, s
		}
		return e.returned(ret), s
	}
	set := func(path, value string) abi.Status {
		p, n := e.putStr(path)
		v, vn := e.putStr(value)
		return e.call(hostSetProperty, p, n, v, vn)
	}

	// Root context (here: proxy_on_configure): plugin properties and xds.node only.
	e.inst.phase = phaseConfigure
	if v, s := get("plugin_vm_id"); s != abi.StatusOK || string(v) != "vm" {
		t.Errorf("plugin_vm_id = %q, %d", v, s)
	}
	if v, s := get("xds\x00node\x00id"); s != abi.StatusOK || string(v) != "node-1" {
		t.Errorf("xds.node.id = %q, %d", v, s)
	}
	if _, s := get("request\x00path"); s != abi.StatusNotFound {
		t.Errorf("request.path in the root context: %d", s)
	}
	e.expect("set in the root context", set("k", "v"), abi.StatusNotFound)

	e.inRequestHeaders(reqHeaders("/a?b=c", [2]string{"x-request-id", "rid"}))
	for path, want := range map[string]string{
		"plugin_name":            "p",
		"plugin_root_id":         "root",
		"request\x00path":        "/a?b=c",
		"request\x00url_path":    "/a",
		"request\x00query":       "b=c",
		"request\x00id":          "rid",
		"request\x00host":        "a.example",
		"source\x00address":      "10.0.0.7:51234",
		"destination\x00address": "10.0.0.1:8443",
	} {
		if v, s := get(path); s != abi.StatusOK || string(v) != want {
			t.Errorf("%q = %q, %d; want %q", path, v, s, want)
		}
	}
	if v, s := get("source\x00port"); s != abi.StatusOK || binary.LittleEndian.Uint64(v) != 51234 {
		t.Errorf("source.port = %x, %d", v, s)
	}
	if v, s := get("request\x00time"); s != abi.StatusOK || int64(binary.LittleEndian.Uint64(v)) != fixedNow.UnixNano() {
		t.Errorf("request.time = %x, %d", v, s)
	}
	for path, want := range map[string]abi.Status{
		"request":                   abi.StatusSerializationFailure,
		"xds":                       abi.StatusSerializationFailure,
		"request\x00nope":           abi.StatusNotFound,
		"request\x00path\x00deeper": abi.StatusNotFound,
		"node\x00id":                abi.StatusNotFound, // removed from Envoy 1.33 in favour of xds.node.id
		"upstream\x00address":       abi.StatusNotFound, // no upstream chosen yet
		"response\x00code":          abi.StatusNotFound,
		"unknown":                   abi.StatusNotFound,
		"":                          abi.StatusNotFound,
	} {
		if _, s := get(path); s != want {
			t.Errorf("%q: status %d, want %d", path, s, want)
		}
	}

	e.expect("set", set("my_key", "value"), abi.StatusOK)
	if v, s := get("my_key"); s != abi.StatusOK || string(v) != "value" {
		t.Errorf("my_key = %q, %d", v, s)
	}
	if v, s := get("filter_state\x00wasm.my_key"); s != abi.StatusOK || string(v) != "value" {
		t.Errorf("filter_state.wasm.my_key = %q, %d", v, s)
	}
	// Envoy stores the whole path but looks values up by the first segment only.
	e.expect("set nested", set("a\x00b", "n"), abi.StatusOK)
	if _, s := get("a\x00b"); s != abi.StatusNotFound {
		t.Errorf("a.b: status %d", s)
	}

	p, n := e.putStr("plugin_name")
	e.expect("get path outside memory", e.call(hostGetProperty, oob, 10, ret, ret+4), abi.StatusInvalidMemoryAccess)
	e.expect("get return outside memory", e.call(hostGetProperty, p, n, oob, oob+4), abi.StatusInvalidMemoryAccess)
	e.expect("set path outside memory", e.call(hostSetProperty, oob, 10, p, n), abi.StatusInvalidMemoryAccess)
	e.expect("set value outside memory", e.call(hostSetProperty, p, n, oob, 10), abi.StatusInvalidMemoryAccess)
}

func TestABISendLocalResponse(t *testing.T) {
	e := newABIEnv(t)
	st := e.inRequestHeaders(reqHeaders("/"))
	details, dn := e.putStr("denied by policy")
	body, bn := e.putStr("go away")
	hdrs, hn := e.put(serialize([][2]string{{"X-Reason", "test"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}}))
	e.expect("valid", e.call(hostSendLocalResponse, 403, details, dn, body, bn, hdrs, hn, uint64(uint32(0xffffffff))), abi.StatusOK)
	lr := st.local
	if lr == nil {
		t.Fatal("no local response recorded")
	}
	want := [][2]string{{"x-reason", "test"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"content-type", "text/plain"}}
	if lr.Status != 403 || string(lr.Body) != "go away" || lr.Details != "denied_by_policy" || lr.GRPCStatus != -1 || !slices.Equal(lr.Headers, want) {
		t.Errorf("local response = %+v", lr)
	}
	if e.h.Stats().LocalResponses != 1 {
		t.Errorf("LocalResponses = %d", e.h.Stats().LocalResponses)
	}

	st.local = nil
	bad, bn2 := e.putStr("\x05\x00\x00\x00garbage")
	e.expect("malformed headers", e.call(hostSendLocalResponse, 500, 0, 0, 0, 0, bad, bn2, 14), abi.StatusOK)
	if st.local == nil || len(st.local.Headers) != 0 || st.local.GRPCStatus != 14 {
		t.Errorf("local response with malformed headers = %+v", st.local)
	}
	e.expect("details outside memory", e.call(hostSendLocalResponse, 500, oob, 10, 0, 0, 0, 0, 0), abi.StatusInvalidMemoryAccess)
	e.expect("body outside memory", e.call(hostSendLocalResponse, 500, 0, 0, oob, 10, 0, 0, 0), abi.StatusInvalidMemoryAccess)
	e.expect("headers outside memory", e.call(hostSendLocalResponse, 500, 0, 0, 0, 0, oob, 10, 0), abi.StatusInvalidMemoryAccess)
}

func TestABISharedData(t *testing.T) {
	e := newABIEnv(t)
	ret, cas := e.slot(8), e.slot(4)
	key, kn := e.putStr("k")
	val, vn := e.putStr("v1")
	e.expect("get missing", e.call(hostGetSharedData, key, kn, ret, ret+4, cas), abi.StatusNotFound)
	e.expect("set", e.call(hostSetSharedData, key, kn, val, vn, 0), abi.StatusOK)
	e.expect("get", e.call(hostGetSharedData, key, kn, ret, ret+4, cas), abi.StatusOK)
	first := e.u32(cas)
	if string(e.returned(ret)) != "v1" || first == 0 {
		t.Errorf("got %q cas %d", e.returned(ret), first)
	}
	val2, vn2 := e.putStr("v2")
	e.expect("set with current cas", e.call(hostSetSharedData, key, kn, val2, vn2, uint64(first)), abi.StatusOK)
	e.expect("set with stale cas", e.call(hostSetSharedData, key, kn, val, vn, uint64(first)), abi.StatusCasMismatch)
	e.call(hostGetSharedData, key, kn, ret, ret+4, cas)
	if string(e.returned(ret)) != "v2" || e.u32(cas) == first {
		t.Errorf("after CAS: %q cas %d", e.returned(ret), e.u32(cas))
	}
	e.expect("set without cas", e.call(hostSetSharedData, key, kn, val, vn, 0), abi.StatusOK)
	other, on := e.putStr("new-key")
	e.expect("set new key with a cas", e.call(hostSetSharedData, other, on, val, vn, 12345), abi.StatusOK)

	e.expect("get key outside memory", e.call(hostGetSharedData, oob, 4, ret, ret+4, cas), abi.StatusInvalidMemoryAccess)
	e.expect("get cas outside memory", e.call(hostGetSharedData, key, kn, ret, ret+4, oob), abi.StatusInvalidMemoryAccess)
	e.expect("set value outside memory", e.call(hostSetSharedData, key, kn, oob, 4, 0), abi.StatusInvalidMemoryAccess)
}

func TestABISharedQueues(t *testing.T) {
	e := newABIEnv(t)
	tok, ret := e.slot(4), e.slot(8)
	name, nn := e.putStr("q")
	vm, vmn := e.putStr("vm")
	e.expect("resolve missing", e.call(hostResolveSharedQueue, vm, vmn, name, nn, tok), abi.StatusNotFound)
	e.expect("register", e.call(hostRegisterSharedQueue, name, nn, tok), abi.StatusOK)
	id := e.u32(tok)
	e.expect("register again", e.call(hostRegisterSharedQueue, name, nn, tok), abi.StatusOK)
	if e.u32(tok) != id || id == 0 {
		t.Errorf("ids %d, %d", id, e.u32(tok))
	}
	e.expect("resolve", e.call(hostResolveSharedQueue, vm, vmn, name, nn, tok), abi.StatusOK)
	if e.u32(tok) != id {
		t.Errorf("resolved %d, want %d", e.u32(tok), id)
	}
	e.expect("dequeue empty", e.call(hostDequeueSharedQueue, uint64(id), ret, ret+4), abi.StatusEmpty)
	item, in := e.putStr("item")
	e.expect("enqueue", e.call(hostEnqueueSharedQueue, uint64(id), item, in), abi.StatusOK)
	if !e.inst.queuePending.Load() {
		t.Error("the registering instance was not told about the item")
	}
	e.expect("dequeue", e.call(hostDequeueSharedQueue, uint64(id), ret, ret+4), abi.StatusOK)
	if string(e.returned(ret)) != "item" {
		t.Errorf("dequeued %q", e.returned(ret))
	}
	e.expect("enqueue unknown", e.call(hostEnqueueSharedQueue, 999, item, in), abi.StatusNotFound)
	e.expect("dequeue unknown", e.call(hostDequeueSharedQueue, 999, ret, ret+4), abi.StatusNotFound)
	e.expect("register outside memory", e.call(hostRegisterSharedQueue, oob, 4, tok), abi.StatusInvalidMemoryAccess)
	e.expect("register token outside memory", e.call(hostRegisterSharedQueue, name, nn, oob), abi.StatusInvalidMemoryAccess)
	e.expect("resolve outside memory", e.call(hostResolveSharedQueue, oob, 4, name, nn, tok), abi.StatusInvalidMemoryAccess)
	e.expect("enqueue outside memory", e.call(hostEnqueueSharedQueue, uint64(id), oob, 4), abi.StatusInvalidMemoryAccess)
	e.call(hostEnqueueSharedQueue, uint64(id), item, in)
	e.expect("dequeue return outside memory", e.call(hostDequeueSharedQueue, uint64(id), oob, oob+4), abi.StatusInvalidMemoryAccess)
}

func TestABIHeaderMapValue(t *testing.T) {
	e := newABIEnv(t)
	ret := e.slot(8)
	get := func(mapType uint64, key string) ([]byte, abi.Status) {
		k, kn := e.putStr(key)
		s := e.call(hostGetHeaderMapValue, mapType, k, kn, ret, ret+4)
		if s != abi.StatusOK {
			return nil, s
		}
		return e.returned(ret), s
	}
	st := e.inRequestHeaders(reqHeaders("/p", [2]string{"cookie", "a=1"}, [2]string{"cookie", "b=2"}))
	for key, want := range map[string]string{":path": "/p", "Cookie": "a=1", "HOST": "a.example", ":authority": "a.example"} {
		if v, s := get(abi.MapRequestHeaders, key); s != abi.StatusOK || string(v) != want {
			t.Errorf("%s = %q, %d; want %q", key, v, s, want)
		}
	}
	if _, s := get(abi.MapRequestHeaders, "x-missing"); s != abi.StatusNotFound {
		t.Errorf("missing header: %d", s)
	}
	if _, s := get(abi.MapResponseHeaders, ":status"); s != abi.StatusBadArgument {
		t.Errorf("response headers during the request: %d", s)
	}
	for _, mt := range []uint64{abi.MapRequestTrailers, abi.MapGrpcInitialMetadata, abi.MapHTTPCallResponseHeaders} {
		if _, s := get(mt, "x"); s != abi.StatusBadArgument {
			t.Errorf("map %d: %d", mt, s)
		}
	}
	if _, s := get(abi.MapTypeMax+1, "x"); s != abi.StatusBadArgument {
		t.Errorf("map type 8: %d", s)
	}
	e.expect("key outside memory", e.call(hostGetHeaderMapValue, 0, oob, 10, ret, ret+4), abi.StatusInvalidMemoryAccess)
	k, kn := e.putStr(":path")
	e.expect("return outside memory", e.call(hostGetHeaderMapValue, 0, k, kn, oob, oob+4), abi.StatusInvalidMemoryAccess)

	// After the request callback returned Continue the request map is gone: a bad argument, and in the access
	// log phase a missing map reads as "not found".
	st.reqMutable = false
	if _, s := get(abi.MapRequestHeaders, ":path"); s != abi.StatusBadArgument {
		t.Errorf("request headers after Continue: %d", s)
	}
	st.logPhase = true
	e.inst.phase = phaseLog
	if v, s := get(abi.MapRequestHeaders, ":path"); s != abi.StatusOK || string(v) != "/p" {
		t.Errorf("request headers in the log phase: %q %d", v, s)
	}
	if _, s := get(abi.MapResponseHeaders, ":status"); s != abi.StatusNotFound {
		t.Errorf("response headers of a stream without a response, log phase: %d", s)
	}
}

func TestABIHeaderMapWrites(t *testing.T) {
	e := newABIEnv(t)
	st := e.inRequestHeaders(reqHeaders("/"))
	k, kn := e.putStr("X-New")
	v, vn := e.putStr("1")
	for name, fn := range map[string]hostcall{"add": hostAddHeaderMapValue, "replace": hostReplaceHeaderMapValue} {
		e.expect(name+" bad type", e.call(fn, 8, k, kn, v, vn), abi.StatusBadArgument)
		e.expect(name+" key outside memory", e.call(fn, 0, oob, 10, v, vn), abi.StatusInvalidMemoryAccess)
		e.expect(name+" value outside memory", e.call(fn, 0, k, kn, oob, 10), abi.StatusInvalidMemoryAccess)
		e.expect(name+" unavailable map", e.call(fn, abi.MapResponseHeaders, k, kn, v, vn), abi.StatusBadArgument)
		e.expect(name+" trailers", e.call(fn, abi.MapRequestTrailers, k, kn, v, vn), abi.StatusBadArgument)
	}
	e.expect("add", e.call(hostAddHeaderMapValue, 0, k, kn, v, vn), abi.StatusOK)
	e.expect("add again", e.call(hostAddHeaderMapValue, 0, k, kn, v, vn), abi.StatusOK)
	if got := values(st.req.pairs, "x-new"); !slices.Equal(got, []string{"1", "1"}) {
		t.Errorf("after two adds x-new = %q", got)
	}
	v2, vn2 := e.putStr("2")
	e.expect("replace", e.call(hostReplaceHeaderMapValue, 0, k, kn, v2, vn2), abi.StatusOK)
	if got := values(st.req.pairs, "x-new"); !slices.Equal(got, []string{"2"}) {
		t.Errorf("after replace x-new = %q", got)
	}
	e.expect("remove bad type", e.call(hostRemoveHeaderMapValue, 8, k, kn), abi.StatusBadArgument)
	e.expect("remove outside memory", e.call(hostRemoveHeaderMapValue, 0, oob, 10), abi.StatusInvalidMemoryAccess)
	e.expect("remove", e.call(hostRemoveHeaderMapValue, 0, k, kn), abi.StatusOK)
	e.expect("remove absent", e.call(hostRemoveHeaderMapValue, 0, k, kn), abi.StatusOK)
	if got := values(st.req.pairs, "x-new"); got != nil {
		t.Errorf("after remove x-new = %q", got)
	}

	size := e.slot(4)
	e.expect("size", e.call(hostGetHeaderMapSize, 0, size), abi.StatusOK)
	if got := e.u32(size); int(got) != st.req.byteSize() || got == 0 {
		t.Errorf("size = %d, want %d", got, st.req.byteSize())
	}
	e.expect("size bad type", e.call(hostGetHeaderMapSize, 8, size), abi.StatusBadArgument)
	e.expect("size unavailable map", e.call(hostGetHeaderMapSize, abi.MapResponseHeaders, size), abi.StatusBadArgument)
	e.expect("size outside memory", e.call(hostGetHeaderMapSize, 0, oob), abi.StatusInvalidMemoryAccess)

	// In the access log phase headers are read-only.
	st.logPhase = true
	e.inst.phase = phaseLog
	e.expect("add in the log phase", e.call(hostAddHeaderMapValue, 0, k, kn, v, vn), abi.StatusBadArgument)
	e.expect("size in the log phase", e.call(hostGetHeaderMapSize, 0, size), abi.StatusBadArgument)
}

func TestABIHeaderMapPairs(t *testing.T) {
	e := newABIEnv(t)
	ret := e.slot(8)
	in := reqHeaders("/", [2]string{"set-cookie", "a"}, [2]string{"set-cookie", "b"})
	st := e.inRequestHeaders(in)
	e.expect("get", e.call(hostGetHeaderMapPairs, 0, ret, ret+4), abi.StatusOK)
	if got := parsePairs(nil, e.returned(ret)); !slices.Equal(got, in) {
		t.Errorf("pairs = %q, want %q", got, in)
	}
	e.expect("get unavailable map", e.call(hostGetHeaderMapPairs, abi.MapResponseHeaders, ret, ret+4), abi.StatusOK)
	if e.returned(ret) != nil {
		t.Errorf("unavailable map returned %q", e.returned(ret))
	}
	e.expect("get bad type", e.call(hostGetHeaderMapPairs, 8, ret, ret+4), abi.StatusBadArgument)
	e.expect("get outside memory", e.call(hostGetHeaderMapPairs, 0, oob, oob+4), abi.StatusInvalidMemoryAccess)
	e.expect("get empty, outside memory", e.call(hostGetHeaderMapPairs, abi.MapResponseHeaders, oob, oob+4), abi.StatusInvalidMemoryAccess)

	next := [][2]string{{"X-B", "2"}, {":path", "/x"}, {"set-cookie", "1"}, {"set-cookie", "2"}}
	p, n := e.put(serialize(next))
	e.expect("set", e.call(hostSetHeaderMapPairs, 0, p, n), abi.StatusOK)
	want := [][2]string{{":path", "/x"}, {"x-b", "2"}, {"set-cookie", "1"}, {"set-cookie", "2"}}
	if !slices.Equal(st.req.pairs, want) {
		t.Errorf("after set = %q, want %q", st.req.pairs, want)
	}
	bad, bn := e.putStr("\x02\x00\x00\x00\x01\x00\x00\x00")
	e.expect("set malformed", e.call(hostSetHeaderMapPairs, 0, bad, bn), abi.StatusOK)
	if len(st.req.pairs) != 0 {
		t.Errorf("a malformed map clears the headers, as in Envoy; got %q", st.req.pairs)
	}
	e.expect("set bad type", e.call(hostSetHeaderMapPairs, 8, p, n), abi.StatusBadArgument)
	e.expect("set outside memory", e.call(hostSetHeaderMapPairs, 0, oob, 10), abi.StatusInvalidMemoryAccess)
	e.expect("set unavailable map", e.call(hostSetHeaderMapPairs, abi.MapResponseHeaders, p, n), abi.StatusBadArgument)
}

func TestABIBuffers(t *testing.T) {
	e := newABIEnv(t)
	ret, size, flags := e.slot(8), e.slot(4), e.slot(4)
	get := func(bt, start, max uint64) ([]byte, abi.Status) {
		s := e.call(hostGetBufferBytes, bt, start, max, ret, ret+4)
		if s != abi.StatusOK {
			return nil, s
		}
		return e.returned(ret), s
	}

	e.inst.phase = phaseConfigure
	if v, s := get(abi.BufferPluginConfiguration, 0, 100); s != abi.StatusOK || string(v) != "plugin-config" {
		t.Errorf("plugin configuration while configuring = %q, %d", v, s)
	}
	if v, s := get(abi.BufferVMConfiguration, 3, 2); s != abi.StatusOK || string(v) != "co" {
		t.Errorf("vm configuration [3:5] = %q, %d", v, s)
	}
	e.expect("status", e.call(hostGetBufferStatus, abi.BufferPluginConfiguration, size, flags), abi.StatusOK)
	if e.u32(size) != uint32(len("plugin-config")) || e.u32(flags) != 0 {
		t.Errorf("status = %d, %d", e.u32(size), e.u32(flags))
	}
	d, dn := e.putStr("x")
	e.expect("set configuration", e.call(hostSetBufferBytes, abi.BufferVMConfiguration, 0, 0, d, dn), abi.StatusBadArgument)

	st := e.inRequestHeaders(reqHeaders("/"))
	if _, s := get(abi.BufferPluginConfiguration, 0, 10); s != abi.StatusNotFound {
		t.Errorf("plugin configuration outside configure: %d", s)
	}
	if v, s := get(abi.BufferRequestBody, 0, 10); s != abi.StatusOK || v != nil {
		t.Errorf("request body outside its callback = %q, %d", v, s)
	}
	e.expect("set body outside its callback", e.call(hostSetBufferBytes, abi.BufferRequestBody, 0, 0, d, dn), abi.StatusBadArgument)
	for _, bt := range []uint64{abi.BufferHTTPCallResponseBody} {
		e.expect("call response body", e.call(hostGetBufferStatus, bt, size, flags), abi.StatusNotFound)
	}
	e.expect("bad type", e.call(hostGetBufferStatus, 9, size, flags), abi.StatusBadArgument)
	e.expect("bytes bad type", e.call(hostGetBufferBytes, 9, 0, 1, ret, ret+4), abi.StatusBadArgument)
	e.expect("set bad type", e.call(hostSetBufferBytes, 9, 0, 0, d, dn), abi.StatusBadArgument)

	st.reqBody, st.reqBodyAvail = []byte("hello"), true
	e.inst.phase = phaseRequestBody
	for _, c := range []struct {
		start, max uint64
		want       string
	}{{0, 5, "hello"}, {1, 3, "ell"}, {3, 100, "lo"}, {5, 1, ""}, {9, 1, ""}, {0, 0, ""}, {0xffffffff, 0xffffffff, ""}} {
		if v, s := get(abi.BufferRequestBody, c.start, c.max); s != abi.StatusOK || string(v) != c.want {
			t.Errorf("body[%d:+%d] = %q, %d; want %q", c.start, c.max, v, s, c.want)
		}
	}
	setBody := func(start, length uint64, data string) abi.Status {
		p, n := e.putStr(data)
		return e.call(hostSetBufferBytes, abi.BufferRequestBody, start, length, p, n)
	}
	e.expect("prepend", setBody(0, 0, ">"), abi.StatusOK)
	e.expect("append", setBody(0x7fffffff, 0, "<"), abi.StatusOK)
	if string(st.reqBody) != ">hello<" {
		t.Errorf("body = %q", st.reqBody)
	}
	e.expect("drain and prepend", setBody(0, 3, "H"), abi.StatusOK)
	if string(st.reqBody) != "Hllo<" {
		t.Errorf("body = %q", st.reqBody)
	}
	e.expect("replace", setBody(0, 0x7fffffff, "new"), abi.StatusOK)
	if string(st.reqBody) != "new" {
		t.Errorf("body = %q", st.reqBody)
	}
	e.expect("write in the middle", setBody(1, 1, "x"), abi.StatusBadArgument)
	e.expect("set data outside memory", e.call(hostSetBufferBytes, abi.BufferRequestBody, 0, 0, oob, 10), abi.StatusInvalidMemoryAccess)
	e.expect("get return outside memory", e.call(hostGetBufferBytes, abi.BufferRequestBody, 0, 3, oob, oob+4), abi.StatusInvalidMemoryAccess)
	e.expect("status outside memory", e.call(hostGetBufferStatus, abi.BufferRequestBody, oob, flags), abi.StatusInvalidMemoryAccess)
}

func TestABICallouts(t *testing.T) {
	e := newABIEnv(t)
	e.inRequestHeaders(reqHeaders("/"))
	tok := e.slot(4)
	up, un := e.putStr("cluster")
	h, hn := e.put(serialize([][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "x"}}))
	e.expect("http_call", e.call(hostHTTPCall, up, un, h, hn, 0, 0, 0, 0, 1000, tok), abi.StatusBadArgument)
	e.expect("http_call outside memory", e.call(hostHTTPCall, oob, 10, h, hn, 0, 0, 0, 0, 1000, tok), abi.StatusInvalidMemoryAccess)
	e.expect("http_call token outside memory", e.call(hostHTTPCall, up, un, h, hn, 0, 0, 0, 0, 1000, oob), abi.StatusInvalidMemoryAccess)
	e.expect("grpc_call", e.call(hostGrpcCall, up, un, 0, 0, 0, 0, 0, 0, 0, 0, 1000, tok), abi.StatusParseFailure)
	e.expect("grpc_call outside memory", e.call(hostGrpcCall, up, un, oob, 10, 0, 0, 0, 0, 0, 0, 1000, tok), abi.StatusInvalidMemoryAccess)
	e.expect("grpc_stream", e.call(hostGrpcStream, up, un, 0, 0, 0, 0, 0, 0, tok), abi.StatusParseFailure)
	e.expect("grpc_send", e.call(hostGrpcSend, 1, 0, 0, 0), abi.StatusNotFound)
	e.expect("grpc_send outside memory", e.call(hostGrpcSend, 1, oob, 10, 0), abi.StatusInvalidMemoryAccess)
	e.expect("grpc_cancel", e.call(hostGrpcToken, 1), abi.StatusNotFound)
	f, fn := e.putStr("compress")
	e.expect("foreign function", e.call(hostCallForeignFunction, f, fn, 0, 0, tok, tok), abi.StatusNotFound)
	e.expect("foreign function outside memory", e.call(hostCallForeignFunction, oob, 10, 0, 0, tok, tok), abi.StatusInvalidMemoryAccess)
}

func TestABITime(t *testing.T) {
	e := newABIEnv(t)
	out := e.slot(8)
	e.expect("time", e.call(hostGetCurrentTime, out), abi.StatusOK)
	if got := e.u64(out); got != uint64(fixedNow.UnixNano()) {
		t.Errorf("time = %d, want Options.Now (%d)", got, fixedNow.UnixNano())
	}
	e.expect("time outside memory", e.call(hostGetCurrentTime, oob), abi.StatusInvalidMemoryAccess)
	e.expect("tick period", e.call(hostSetTickPeriod, 250), abi.StatusOK)
	if e.inst.tickPeriod != 250*time.Millisecond {
		t.Errorf("tick period = %v", e.inst.tickPeriod)
	}
}

func TestABIMetrics(t *testing.T) {
	e := newABIEnv(t)
	id, val := e.slot(4), e.slot(8)
	define := func(mt uint64, name string) (uint32, abi.Status) {
		p, n := e.putStr(name)
		s := e.call(hostDefineMetric, mt, p, n, id)
		return e.u32(id), s
	}
	counter, s1 := define(abi.MetricCounter, "c")
	gauge, s2 := define(abi.MetricGauge, "g")
	hist, s3 := define(abi.MetricHistogram, "h")
	again, s4 := define(abi.MetricCounter, "c")
	if s1|s2|s3|s4 != abi.StatusOK || counter != 4 || gauge != 5 || hist != 6 || again != counter {
		t.Fatalf("ids %d %d %d %d (statuses %d %d %d %d); want Envoy's 4 5 6 and the same id again", counter, gauge, hist, again, s1, s2, s3, s4)
	}
	if _, s := define(3, "x"); s != abi.StatusBadArgument {
		t.Errorf("define type 3: %d", s)
	}
	e.expect("define name outside memory", e.call(hostDefineMetric, 0, oob, 4, id), abi.StatusInvalidMemoryAccess)
	p, n := e.putStr("c")
	e.expect("define id outside memory", e.call(hostDefineMetric, 0, p, n, oob), abi.StatusInvalidMemoryAccess)

	neg := func(v int64) uint64 { return uint64(v) }
	e.expect("increment counter", e.call(hostIncrementMetric, uint64(counter), 3), abi.StatusOK)
	e.expect("increment counter by 0", e.call(hostIncrementMetric, uint64(counter), 0), abi.StatusBadArgument)
	e.expect("decrement counter", e.call(hostIncrementMetric, uint64(counter), neg(-1)), abi.StatusBadArgument)
	e.expect("record counter adds", e.call(hostRecordMetric, uint64(counter), 2), abi.StatusOK)
	e.expect("increment gauge", e.call(hostIncrementMetric, uint64(gauge), 10), abi.StatusOK)
	e.expect("decrement gauge", e.call(hostIncrementMetric, uint64(gauge), neg(-4)), abi.StatusOK)
	e.expect("increment histogram", e.call(hostIncrementMetric, uint64(hist), 1), abi.StatusBadArgument)
	e.expect("record histogram", e.call(hostRecordMetric, uint64(hist), 7), abi.StatusOK)
	e.expect("record histogram", e.call(hostRecordMetric, uint64(hist), 9), abi.StatusOK)
	e.expect("increment unknown", e.call(hostIncrementMetric, 400, 1), abi.StatusNotFound)
	e.expect("record unknown", e.call(hostRecordMetric, 401, 1), abi.StatusNotFound)
	e.expect("get counter", e.call(hostGetMetric, uint64(counter), val), abi.StatusOK)
	if e.u64(val) != 5 {
		t.Errorf("counter = %d, want 5", e.u64(val))
	}
	e.expect("get gauge", e.call(hostGetMetric, uint64(gauge), val), abi.StatusOK)
	if e.u64(val) != 6 {
		t.Errorf("gauge = %d, want 6", e.u64(val))
	}
	e.expect("record gauge sets", e.call(hostRecordMetric, uint64(gauge), 42), abi.StatusOK)
	e.expect("get histogram", e.call(hostGetMetric, uint64(hist), val), abi.StatusBadArgument)
	e.expect("get unknown", e.call(hostGetMetric, 404, val), abi.StatusNotFound)
	e.expect("get outside memory", e.call(hostGetMetric, uint64(counter), oob), abi.StatusInvalidMemoryAccess)

	want := []Metric{
		{Name: "c", Kind: MetricCounter, Value: 5},
		{Name: "g", Kind: MetricGauge, Value: 42},
		{Name: "h", Kind: MetricHistogram, Value: 9, Count: 2, Sum: 16},
	}
	if got := e.h.Metrics(); !slices.Equal(got, want) {
		t.Errorf("Metrics() = %+v\nwant %+v", got, want)
	}
}

func TestABIContexts(t *testing.T) {
	e := newABIEnv(t)
	st := e.inRequestHeaders(reqHeaders("/"))
	e.expect("effective unknown", e.call(hostSetEffectiveContext, 77), abi.StatusBadArgument)
	e.expect("effective stream", e.call(hostSetEffectiveContext, uint64(st.id)), abi.StatusOK)
	e.expect("effective root", e.call(hostSetEffectiveContext, rootContextID), abi.StatusOK)
	// Acting as the root context, the stream's maps are out of reach.
	ret := e.slot(8)
	k, kn := e.putStr(":path")
	e.expect("header from the root context", e.call(hostGetHeaderMapValue, 0, k, kn, ret, ret+4), abi.StatusBadArgument)
	e.inst.effective = 0
	e.expect("done without pending shutdown", e.call(hostDone), abi.StatusNotFound)

	e.inst.phase = phaseConfigure
	e.expect("get_configuration", e.call(hostGetConfiguration, ret, ret+4), abi.StatusOK)
	if string(e.returned(ret)) != "plugin-config" {
		t.Errorf("configuration while configuring = %q", e.returned(ret))
	}
	e.inst.phase = phaseVMStart
	e.call(hostGetConfiguration, ret, ret+4)
	if string(e.returned(ret)) != "vm-config" {
		t.Errorf("configuration at VM start = %q", e.returned(ret))
	}
	e.expect("get_configuration outside memory", e.call(hostGetConfiguration, oob, oob+4), abi.StatusInvalidMemoryAccess)
}

func TestABIStreamControl(t *testing.T) {
	e := newABIEnv(t)
	st := e.inRequestHeaders(reqHeaders("/"))
	for typ, want := range map[uint64]abi.Status{
		abi.StreamRequest: abi.StatusOK, abi.StreamResponse: abi.StatusOK, abi.StreamDownstream: abi.StatusOK,
		abi.StreamUpstream: abi.StatusUnimplemented, 4: abi.StatusBadArgument,
	} {
		e.expect("continue_stream", e.call(hostContinueStream, typ), want)
	}
	if st.reqMutable {
		t.Error("continuing the request keeps the request headers writable")
	}
	e.expect("continue_request", e.call(hostContinueRequest), abi.StatusOK)
	e.expect("continue_response", e.call(hostContinueResponse), abi.StatusOK)
	e.expect("clear_route_cache", e.call(hostClearRouteCache), abi.StatusOK)
	for typ := uint64(0); typ <= 3; typ++ {
		e.expect("close_stream", e.call(hostCloseStream, typ), abi.StatusOK)
	}
	e.expect("close_stream bad type", e.call(hostCloseStream, 4), abi.StatusBadArgument)
	if !st.reset {
		t.Error("close_stream(request) did not mark the stream for reset")
	}
}

// Every host function of the Envoy 1.33 list is registered, with the signature proxy-wasm-cpp-host exports.
func TestABIRegisteredFunctions(t *testing.T) {
	e := newABIEnv(t)
	env := e.h.runtime.Module("env")
	defs := env.ExportedFunctionDefinitions()
	list, _ := EnvoyImports("1.33")
	for _, name := range list {
		module, fn, _ := strings.Cut(name, ".")
		if module != "env" {
			continue
		}
		if _, ok := defs[fn]; !ok {
			t.Errorf("%s is not registered", name)
		}
	}
	want := map[string]string{
		"proxy_log":              "i32, i32, i32 -> i32",
		"proxy_increment_metric": "i32, i64 -> i32",
		"proxy_record_metric":    "i32, i64 -> i32",
		"proxy_done":             "void -> i32",
		"proxy_http_call":        "i32, i32, i32, i32, i32, i32, i32, i32, i32, i32 -> i32",
	}
	for name, sigText := range want {
		d := defs[name]
		got := Signature{Params: valueTypes(d.ParamTypes()), Results: valueTypes(d.ResultTypes())}.String()
		if got != sigText {
			t.Errorf("%s: %s, want %s", name, got, sigText)
		}
	}
	if names := defs["proxy_get_header_map_value"].ParamNames(); !slices.Equal(names, []string{"map_type", "key_data", "key_size", "return_value_data", "return_value_size"}) {
		t.Errorf("parameter names = %q", names)
	}
}
