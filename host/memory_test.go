package host

import "testing"

// The guest's linear memory must not grow once warmed up: every stream's context is deleted
// (proxy_on_delete) and everything the host hands the guest is in blocks the guest's allocator owns. A Go guest's
// memory grows until its garbage collector first runs, which GOGC=10 (passed through the WASI environment) brings
// forward; the warm-up covers that, and the Go guest behaves the same on every run (wasm is single-threaded). A
// host that skipped proxy_on_delete fails this test: the SDK keeps every context and the memory climbs.
func TestGuestMemoryFlat(t *testing.T) {
	const memoryWarmUp, measured = 20000, 10000
	for _, name := range []string{"readheaders", "headers"} {
		t.Run(name, func(t *testing.T) {
			h, _ := newHost(t, Options{Module: guest(t, name), Logger: discard(), Env: map[string]string{"GOGC": "10"}})
			run := func(n int) {
				for i := 0; i < n; i++ {
					s := newStream(t, h)
					s.OnRequestHeaders(chatRequest(), true)
					s.OnResponseHeaders(chatResponse(), true)
					s.Close()
				}
			}
			size := func() uint32 {
				inst := <-h.idle
				defer func() { h.idle <- inst }()
				return inst.mem.Size()
			}
			run(memoryWarmUp)
			before := size()
			run(measured)
			if after := size(); after != before {
				t.Errorf("guest memory grew from %d to %d bytes over %d streams", before, after, measured)
			}
			if st := h.Stats(); st.Streams != memoryWarmUp+measured || st.Traps != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
