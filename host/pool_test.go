package host

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

// These tests cover the pool model: a few instances, each carrying many streams at once, as an Envoy worker's VM
// holds one context per stream.

func echoRequest(value string) [][2]string { return reqHeaders("/echo", [2]string{"x-echo", value}) }

// Far more streams than instances are open at the same time (all between OnRequestHeaders and Close together),
// and each gets back its own request's value: the guest keeps it in the stream's context, and the host hands every
// callback the state of its own stream.
func TestManyOpenStreamsOnFewInstances(t *testing.T) {
	const pool, streams = 2, 200
	h, _ := newHost(t, Options{Module: guest(t, "headers"), PoolSize: pool})
	var opened, finished sync.WaitGroup
	release := make(chan struct{})
	opened.Add(streams)
	for i := 0; i < streams; i++ {
		finished.Add(1)
		go func() {
			defer finished.Done()
			want := "stream-" + strconv.Itoa(i)
			s, err := h.NewStream(context.Background(), StreamInfo{SourceAddress: "10.0.0.7:51234"})
			if err != nil {
				t.Error(err)
				opened.Done()
				return
			}
			defer s.Close()
			v := s.OnRequestHeaders(echoRequest(want), true)
			opened.Done()
			if v != (Verdict{}) {
				t.Errorf("%s: request verdict %+v", want, v)
			}
			<-release
			if v := s.OnResponseHeaders(respHeaders([2]string{"set-cookie", "a=1"}), true); v != (Verdict{}) {
				t.Errorf("%s: response verdict %+v", want, v)
			}
			if got := values(s.ResponseHeaders(), "x-echo"); !slices.Equal(got, []string{want}) {
				t.Errorf("%s: x-echo = %q", want, got)
			}
		}()
	}
	opened.Wait()
	st := h.Stats()
	if st.Active != streams || st.Instances != pool {
		t.Errorf("with every stream open: stats %+v, want %d active on %d instances", st, streams, pool)
	}
	for i := range h.slots {
		if n := h.slots[i].inst.Load().active.Load(); n == 0 {
			t.Errorf("instance %d carries no stream", i)
		}
	}
	close(release)
	finished.Wait()
	if st := h.Stats(); st.Streams != streams || st.Active != 0 || st.Traps != 0 || st.Instances != pool {
		t.Errorf("stats %+v", st)
	}
}

// Streams of one instance interleave as they do in an Envoy worker: A's request, B's request, B's response, A's
// response. Each callback sees its own stream's headers, and the guest its own context.
func TestInterleavedStreamsOnOneInstance(t *testing.T) {
	h, _ := newHost(t, Options{Module: guest(t, "headers"), PoolSize: 1})
	a, b := newStream(t, h), newStream(t, h)
	if a.inst != b.inst || a.st.id == b.st.id {
		t.Fatalf("streams on instances %d and %d with context ids %d and %d", a.inst.serial, b.inst.serial, a.st.id, b.st.id)
	}
	a.OnRequestHeaders(echoRequest("A"), true)
	b.OnRequestHeaders(echoRequest("B"), true)
	b.OnResponseHeaders(respHeaders(), true)
	a.OnResponseHeaders(respHeaders([2]string{"x-upstream", "a"}), true)
	if got := b.ResponseHeaders(); !slices.Equal(got, [][2]string{{":status", "200"}, {"x-echo", "B"}}) {
		t.Errorf("B's response %q", got)
	}
	if got := a.ResponseHeaders(); !slices.Equal(got, [][2]string{{":status", "200"}, {"x-upstream", "a"}, {"x-echo", "A"}}) {
		t.Errorf("A's response %q", got)
	}
	b.Close()
	a.Close()
}

// The host calls each context by its own id, per instance as in proxy-wasm-cpp-host, and closes each with its own
// proxy_on_log, proxy_on_done and proxy_on_delete, whatever the order streams interleave in.
func TestInterleavedLifecycle(t *testing.T) {
	h, rec := newHost(t, Options{Module: wat(t, "lifecycle"), PoolSize: 1})
	start := len(rec.all())
	a, b := newStream(t, h), newStream(t, h)
	ida, idb := a.id(), b.id()
	a.OnRequestHeaders(reqHeaders("/"), true)
	b.OnRequestHeaders(reqHeaders("/"), true)
	b.OnResponseHeaders(respHeaders(), true)
	a.OnResponseHeaders(respHeaders(), true)
	b.Close()
	a.Close()
	var got []string
	for _, r := range rec.all()[start:] {
		if msg, ok := strings.CutPrefix(r, "INFO "); ok {
			got = append(got, msg)
		}
	}
	line := func(what string, id uint32) string { return fmt.Sprintf("%s context_id=%d", what, id) }
	want := []string{
		line("context_create stream", ida), line("request_headers", ida),
		line("context_create stream", idb), line("request_headers", idb), line("response_headers", idb),
		line("response_headers", ida),
		line("log", idb), line("done", idb), line("delete", idb),
		line("log", ida), line("done", ida), line("delete", ida),
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls\n got %q\nwant %q", got, want)
	}
	if ida != rootContextID+1 || idb != rootContextID+2 {
		t.Errorf("context ids %d and %d, want %d and %d", ida, idb, rootContextID+1, rootContextID+2)
	}
}

// New streams go to the instance with the fewest open streams.
func TestStreamsSpreadOverInstances(t *testing.T) {
	const pool = 3
	h, _ := newHost(t, Options{Module: wat(t, "minimal"), PoolSize: pool})
	var held []*Stream
	for i := 0; i < 2*pool; i++ {
		held = append(held, newStream(t, h))
	}
	for i := range h.slots {
		if n := h.slots[i].inst.Load().active.Load(); n != 2 {
			t.Errorf("instance %d carries %d streams, want 2", i, n)
		}
	}
	// Free one instance: the next stream goes there.
	first := held[0].inst
	for _, s := range held {
		if s.inst == first {
			s.Close()
		}
	}
	s := newStream(t, h)
	if s.inst != first {
		t.Errorf("new stream on instance %d, want the idle %d", s.inst.serial, first.serial)
	}
	s.Close()
	for _, s := range held {
		s.Close()
	}
}

// When a callback fails, the instance dies with every context in it: the other streams pinned to it get the
// failure policy's answer at their next callback (and Close leaves the dead instance alone), streams on other
// instances go on, and the pool recovers.
func TestFailureReachesTheInstancesOtherStreams(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, FailOpen} {
		t.Run(policy.String(), func(t *testing.T) {
			const pool, streams = 2, 6
			h, rec := newHost(t, Options{Module: guest(t, "lifecycle"), PoolSize: pool, FailurePolicy: policy})
			var all []*Stream
			for i := 0; i < streams; i++ {
				s := newStream(t, h)
				path := "/"
				if i == 0 {
					path = "/panic-response"
				}
				if v := s.OnRequestHeaders(reqHeaders(path), true); v != (Verdict{}) {
					t.Fatalf("stream %d request: %+v", i, v)
				}
				all = append(all, s)
			}
			doneBefore := len(rec.messages("cb=stream_done"))
			dead := all[0].inst
			resp := respHeaders([2]string{"set-cookie", "a=1"})
			v := all[0].OnResponseHeaders(resp, true)
			if v.Err == nil || !strings.Contains(v.Err.Error(), "boom in response headers") && !strings.Contains(v.Err.Error(), "unreachable") {
				t.Fatalf("failing stream: %+v", v)
			}
			onDead, onLive := 1, 0
			for i, s := range all[1:] {
				v := s.OnResponseHeaders(resp, true)
				if s.inst != dead {
					onLive++
					if v != (Verdict{}) {
						t.Errorf("stream %d on a live instance: %+v", i+1, v)
					}
					continue
				}
				onDead++
				if v.Err == nil || !strings.Contains(v.Err.Error(), "proxy_on_response_headers: not run, the plugin failed in another stream of the same instance") {
					t.Errorf("stream %d on the failed instance: Err = %v", i+1, v.Err)
				}
				if (policy == FailOpen) != (v.Local == nil) || v.Local != nil && v.Local.Status != 503 {
					t.Errorf("stream %d on the failed instance under %v: local %+v", i+1, policy, v.Local)
				}
				if got := s.ResponseHeaders(); !slices.Equal(got, resp) {
					t.Errorf("stream %d response headers %q", i+1, got)
				}
				// Later callbacks are skipped, as for the failing stream.
				if v := s.OnResponseBody([]byte("x"), true); v != (Verdict{}) {
					t.Errorf("stream %d body after the failure: %+v", i+1, v)
				}
			}
			if onDead < 2 || onLive == 0 {
				t.Fatalf("%d streams on the failed instance, %d on the other: the test needs both", onDead, onLive)
			}
			for _, s := range all {
				s.Close()
			}
			// Only the streams of the live instance reached proxy_on_log.
			if got := len(rec.messages("cb=stream_done")) - doneBefore; got != onLive {
				t.Errorf("%d streams logged, want the %d of the live instance", got, onLive)
			}
			st := h.Stats()
			answered := st.FailClosed
			if policy == FailOpen {
				answered = st.FailOpen
			}
			if st.Traps != 1 || st.Reloads != 1 || answered != uint64(onDead) || st.FailOpen+st.FailClosed != uint64(onDead) || st.Active != 0 {
				t.Errorf("stats %+v, want 1 trap and %d streams answered by the policy", st, onDead)
			}
			if got := rec.messages("plugin failed"); len(got) != 1 {
				t.Errorf("failure logged %d times", len(got))
			}
			waitInstances(t, h, pool)
			assertPoolServes(t, h, pool)
			for i := range h.slots {
				if h.slots[i].inst.Load() == dead {
					t.Error("the failed instance is still in the pool")
				}
			}
		})
	}
}

// A replacement that cannot be instantiated breaks nothing: NewStream says why, a later NewStream tries again, and
// once instantiation works the pool serves again.
func TestReplacementFailure(t *testing.T) {
	h, rec := newHost(t, Options{Module: guest(t, "lifecycle"), PluginConfig: []byte("gate"), PoolSize: 1})
	h.shared.set("gate", []byte("closed"), 0)
	s := newStream(t, h)
	if v := s.OnRequestHeaders(reqHeaders("/panic"), true); v.Err == nil {
		t.Fatalf("verdict %+v", v)
	}
	s.Close()
	const want = "wasmhost: no plugin instance available: replacing a failed instance: wasmhost: plugin rejected its configuration"
	if _, err := h.NewStream(context.Background(), StreamInfo{}); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("NewStream with no instance: err = %v, want prefix %q", err, want)
	}
	attempts := len(rec.messages("gate closed"))
	if _, err := h.NewStream(context.Background(), StreamInfo{}); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("second NewStream: err = %v", err)
	}
	if got := len(rec.messages("gate closed")); got != attempts+1 {
		t.Errorf("the second NewStream made %d instantiation attempts, want 1", got-attempts)
	}
	if st := h.Stats(); st.Instances != 0 || st.Active != 0 || st.Traps != 1 || st.Reloads != 1 || st.Streams != 1 {
		t.Errorf("stats with no instance %+v", st)
	}
	h.shared.set("gate", []byte("open"), 0)
	s = newStream(t, h)
	if v := s.OnRequestHeaders(reqHeaders("/"), true); v != (Verdict{}) {
		t.Errorf("after the pool recovered: %+v", v)
	}
	s.Close()
	if st := h.Stats(); st.Instances != 1 || st.Active != 0 || st.Streams != 2 {
		t.Errorf("stats after recovery %+v", st)
	}
}

// proxy_set_effective_context reaches any live stream context of the instance, not only the running one, and
// nothing once the stream is gone.
func TestABIEffectiveContextOtherStream(t *testing.T) {
	e := newABIEnv(t)
	other, err := e.h.NewStream(context.Background(), StreamInfo{SourceAddress: "192.0.2.99:1234"})
	if err != nil {
		t.Fatal(err)
	}
	if other.inst != e.inst {
		t.Fatal("the second stream is on another instance")
	}
	other.OnRequestHeaders(reqHeaders("/other"), true) // creates its context
	e.inRequestHeaders(reqHeaders("/"))
	ret := e.slot(8)
	path, pathLen := e.putStr("source\x00address")
	e.expect("effective other stream", e.call(hostSetEffectiveContext, uint64(other.st.id)), abi.StatusOK)
	e.expect("property of the other stream", e.call(hostGetProperty, path, pathLen, ret, ret+4), abi.StatusOK)
	if got := string(e.returned(ret)); got != "192.0.2.99:1234" {
		t.Errorf("source.address through the other context = %q", got)
	}
	id := other.st.id
	e.inst.phase, e.inst.effective, e.inst.effSt = phaseIdle, 0, nil
	other.Close()
	e.inRequestHeaders(reqHeaders("/"))
	e.expect("effective deleted stream", e.call(hostSetEffectiveContext, uint64(id)), abi.StatusBadArgument)
}

// id returns the stream's context id (tests only; the state is gone after Close).
func (s *Stream) id() uint32 {
	if s.st == nil {
		return 0
	}
	return s.st.id
}

// The context table agrees with a map under a mix of inserts and removals like the pool's (ids mostly rising,
// streams closing out of order) and colliding ids.
func TestContextTable(t *testing.T) {
	var tab contextTable
	ref := map[uint32]*streamState{}
	states := make([]streamState, 64)
	next := uint32(rootContextID)
	var removed []uint32
	rnd := uint32(12345)
	random := func(n int) int {
		rnd = rnd*1664525 + 1013904223
		return int(rnd>>8) % n
	}
	for step := 0; step < 20000; step++ {
		switch r := random(10); {
		case r < 5 || len(ref) == 0:
			next++
			id := next
			if random(8) == 0 {
				id = next + 16*uint32(random(4)) // collides with its neighbours in a small table
			}
			st := &states[random(len(states))]
			tab.put(id, st)
			ref[id] = st
		default:
			var victim uint32
			k := random(len(ref))
			for id := range ref {
				if k == 0 {
					victim = id
					break
				}
				k--
			}
			tab.remove(victim)
			delete(ref, victim)
			tab.remove(victim) // removing twice is harmless
			removed = append(removed, victim)
		}
		if tab.n != len(ref) {
			t.Fatalf("step %d: %d entries, want %d", step, tab.n, len(ref))
		}
		if step%97 == 0 {
			for id, want := range ref {
				if got, ok := tab.get(id); !ok || got != want {
					t.Fatalf("step %d: get(%d) = %p, %v, want %p", step, id, got, ok, want)
				}
			}
			absent := removed
			for id := next + 1; id < next+40; id++ {
				absent = append(absent, id)
			}
			for _, id := range absent {
				if _, inRef := ref[id]; !inRef {
					if _, ok := tab.get(id); ok {
						t.Fatalf("step %d: get(%d) found a removed or never added id", step, id)
					}
				}
			}
			removed = removed[:0]
		}
	}
	if _, ok := tab.get(0); ok {
		t.Error("id 0 found")
	}
	tab.clear()
	if _, ok := tab.get(next); ok || tab.n != 0 {
		t.Error("entries left after clear")
	}
}
