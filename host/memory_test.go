package host

import (
	"context"
	"testing"
)

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
			size := func() uint32 { return h.slots[0].inst.Load().mem.Size() }
			run(memoryWarmUp)
			before := size()
			run(measured)
			if after := size(); after != before {
				t.Errorf("guest memory grew from %d to %d bytes over %d streams", before, after, measured)
			}
			if st := h.Stats(); st.Streams != memoryWarmUp+measured || st.Traps != 0 || st.GuestMemoryBytes != int64(size()) {
				t.Errorf("stats %+v, guest memory %d bytes", st, size())
			}
		})
	}
}

// Stats.GuestMemoryBytes adds up the memory of the live instances: it follows a guest that grows, drops a failed
// instance's memory and counts its replacement's, and is 0 once the host is closed.
func TestGuestMemoryBytes(t *testing.T) {
	const pool = 2
	h, err := New(context.Background(), Options{Module: guest(t, "lifecycle"), PoolSize: pool, Logger: discard(), CacheDir: testCacheDir})
	if err != nil {
		t.Fatal(err)
	}
	sum := func() int64 {
		var n int64
		for i := range h.slots {
			if inst := h.slots[i].inst.Load(); inst != nil {
				n += int64(inst.mem.Size())
			}
		}
		return n
	}
	if got := h.Stats().GuestMemoryBytes; got != sum() || got == 0 {
		t.Errorf("after New: %d bytes, instances have %d", got, sum())
	}
	// A request body the guest buffers (/body pauses until the end) makes its memory grow.
	s := newStream(t, h)
	s.OnRequestHeaders(reqHeaders("/body"), false)
	big := make([]byte, 4<<20)
	s.OnRequestBody(big, false)
	s.OnRequestBody(big, true)
	s.Close()
	if got := h.Stats().GuestMemoryBytes; got != sum() || got < 8<<20 {
		t.Errorf("after a large body: %d bytes, instances have %d", got, sum())
	}
	s = newStream(t, h)
	s.OnRequestHeaders(reqHeaders("/panic"), true)
	s.Close()
	waitInstances(t, h, pool)
	if got := h.Stats().GuestMemoryBytes; got != sum() {
		t.Errorf("after a replacement: %d bytes, instances have %d", got, sum())
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.Stats().GuestMemoryBytes; got != 0 {
		t.Errorf("after Close: %d bytes", got)
	}
}
