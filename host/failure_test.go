package host

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// waitInstances waits for the replacements under way (started when an instance failed) to finish, then checks that
// they brought the pool back to n instances, each in its place in the pool.
func waitInstances(t *testing.T, h *Host, n int64) {
	t.Helper()
	for {
		h.poolMu.Lock()
		var pending []chan struct{}
		for i := range h.slots {
			if ch := h.slots[i].creating; ch != nil {
				pending = append(pending, ch)
			}
		}
		h.poolMu.Unlock()
		if len(pending) == 0 {
			break
		}
		for _, ch := range pending {
			<-ch
		}
	}
	var filled int64
	for i := range h.slots {
		if inst := h.slots[i].inst.Load(); inst != nil && !inst.dead.Load() {
			filled++
		}
	}
	if h.Stats().Instances != n || filled != n {
		t.Fatalf("instances = %d (%d in their slots), want %d", h.Stats().Instances, filled, n)
	}
}

// oddHeaders has 5 entries, so the trap guest fails on it; evenHeaders has 4.
func oddHeaders() [][2]string  { return reqHeaders("/", [2]string{"x-odd", "1"}) }
func evenHeaders() [][2]string { return reqHeaders("/") }

func TestFailurePolicyRequestPhase(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, FailOpen, FailReload} {
		t.Run(policy.String(), func(t *testing.T) {
			h, rec := newHost(t, Options{Module: wat(t, "trap"), FailurePolicy: policy})
			s := newStream(t, h)
			in := oddHeaders()
			v := s.OnRequestHeaders(in, true)
			if v.Err == nil || !strings.Contains(v.Err.Error(), "wasmhost: proxy_on_request_headers: ") || !strings.Contains(v.Err.Error(), "unreachable") {
				t.Fatalf("Err = %v", v.Err)
			}
			if policy == FailOpen {
				if v.Local != nil {
					t.Errorf("fail open answered %+v", v.Local)
				}
			} else if v.Local == nil || v.Local.Status != 503 || v.Local.Details != "wasm_fail_stream" || v.Local.Body != nil {
				t.Errorf("fail closed answered %+v", v.Local)
			}
			if got := s.RequestHeaders(); !slices.Equal(got, in) {
				t.Errorf("request headers %q", got)
			}
			// Later callbacks of the failed stream are skipped, whatever they carry.
			resp := respHeaders([2]string{"set-cookie", "a=1"})
			if v := s.OnResponseHeaders(resp, true); v != (Verdict{}) {
				t.Errorf("response verdict after failure %+v", v)
			}
			if got := s.ResponseHeaders(); !slices.Equal(got, resp) {
				t.Errorf("response headers %q", got)
			}
			s.Close()
			s.Close()

			st := h.Stats()
			wantOpen, wantClosed := uint64(0), uint64(1)
			if policy == FailOpen {
				wantOpen, wantClosed = 1, 0
			}
			if st.Traps != 1 || st.Reloads != 1 || st.FailOpen != wantOpen || st.FailClosed != wantClosed || st.Active != 0 {
				t.Errorf("stats %+v", st)
			}
			if len(rec.messages("plugin failed")) != 1 {
				t.Errorf("failure not logged once: %q", rec.all())
			}
			// The failed instance is gone; a fresh one serves the next stream.
			waitInstances(t, h, 1)
			s = newStream(t, h)
			if v := s.OnRequestHeaders(evenHeaders(), true); v != (Verdict{}) {
				t.Errorf("next stream verdict %+v", v)
			}
			s.Close()
		})
	}
}

func TestFailurePolicyResponsePhase(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, FailOpen} {
		t.Run(policy.String(), func(t *testing.T) {
			h, _ := newHost(t, Options{Module: guest(t, "headers"), FailurePolicy: policy})
			s := newStream(t, h)
			s.OnRequestHeaders(reqHeaders("/add-then-panic"), true)
			upstream := respHeaders([2]string{"set-cookie", "a=1"}, [2]string{"set-cookie", "b=2"})
			v := s.OnResponseHeaders(upstream, true)
			if v.Err == nil || !strings.Contains(v.Err.Error(), "proxy_on_response_headers") {
				t.Fatalf("Err = %v", v.Err)
			}
			if (policy == FailOpen) != (v.Local == nil) {
				t.Errorf("local response %+v under %v", v.Local, policy)
			}
			// The plugin added x-partial and removed set-cookie before failing; none of it survives.
			if got := s.ResponseHeaders(); !slices.Equal(got, upstream) {
				t.Errorf("response headers %q, want the upstream's %q", got, upstream)
			}
			s.Close()
		})
	}
}

func TestGoPanicIsAFailure(t *testing.T) {
	h, rec := newHost(t, Options{Module: guest(t, "lifecycle")})
	s := newStream(t, h)
	v := s.OnRequestHeaders(reqHeaders("/panic"), true)
	// A Go panic ends in runtime.abort, an unreachable instruction.
	if v.Err == nil || !strings.Contains(v.Err.Error(), "wasm error: unreachable") || !strings.Contains(v.Err.Error(), "runtime.gopanic") || v.Local == nil {
		t.Fatalf("verdict %+v", v)
	}
	s.Close()
	// The Go runtime's panic report goes to stderr, which is logged at error level, one record per fd_write as
	// Envoy logs it: the runtime prints "panic: " and the value in separate writes.
	if got := rec.messages("boom in request headers"); len(got) != 1 || !strings.HasPrefix(got[0], "ERROR") || !strings.Contains(got[0], "stream=stderr") {
		t.Errorf("stderr not logged: %q", got)
	}
}

// Envoy's proc_exit only logs at trace level and returns (cpp-host's Context::error, overridden by Envoy): the guest
// runs on after it, here to return Continue.
func TestProcExitReturnsToTheGuest(t *testing.T) {
	h, rec := newHost(t, Options{Module: wat(t, "exit")})
	s := newStream(t, h)
	v := s.OnRequestHeaders(evenHeaders(), true)
	s.Close()
	if v != (Verdict{}) {
		t.Fatalf("verdict %+v, want Continue", v)
	}
	if got := rec.messages("wasi_unstable proc_exit"); len(got) != 1 || !strings.Contains(got[0], "exit_code=3") {
		t.Errorf("proc_exit not logged at trace: %q", got)
	}
	if st := h.Stats(); st.Traps != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Pointers outside guest memory come back as statuses; the host neither panics nor fails the plugin.
func TestOutOfBoundsPointersThroughGuest(t *testing.T) {
	h, _ := newHost(t, Options{Module: wat(t, "oob")})
	s := newStream(t, h)
	if v := s.OnRequestHeaders(evenHeaders(), true); v != (Verdict{}) {
		t.Fatalf("verdict %+v", v)
	}
	if got := values(s.RequestHeaders(), "x-oob"); !slices.Equal(got, []string{"6662"}) {
		t.Errorf("x-oob = %q, want 6662 (InvalidMemoryAccess x3, BadArgument)", got)
	}
	s.Close()
	if st := h.Stats(); st.Traps != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Without MaxStreams a pool of one instance carries any number of open streams; with it, NewStream waits for one
// to close.
func TestMaxStreams(t *testing.T) {
	h, _ := newHost(t, Options{Module: wat(t, "minimal"), PoolSize: 1, MaxStreams: 2})
	s1, s2 := newStream(t, h), newStream(t, h)
	// A caller that gives up (its context ends) while both places are taken gets its context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.NewStream(ctx, StreamInfo{}); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "2 streams") {
		t.Errorf("third stream with MaxStreams 2: err = %v", err)
	}
	if st := h.Stats(); st.Active != 2 || st.Streams != 2 {
		t.Errorf("stats after the refused stream %+v", st)
	}
	done := make(chan *Stream)
	go func() {
		s3, err := h.NewStream(context.Background(), StreamInfo{})
		if err != nil {
			t.Error(err)
		}
		done <- s3
	}()
	s1.Close()
	s3 := <-done
	if s3 == nil {
		t.FailNow()
	}
	if v := s3.OnRequestHeaders(evenHeaders(), true); v != (Verdict{}) {
		t.Errorf("verdict %+v", v)
	}
	s3.Close()
	s2.Close()
}

func TestCloseHost(t *testing.T) {
	h, err := New(context.Background(), Options{Module: wat(t, "lifecycle"), Logger: discard(), PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := h.NewStream(context.Background(), StreamInfo{})
	// Close waits for the open stream: given a context that ends while the stream is still open, it returns the
	// context's error, not success. h.done closes when Close begins.
	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error)
	go func() { closed <- h.Close(ctx) }()
	<-h.done
	if _, err := h.NewStream(context.Background(), StreamInfo{}); !errors.Is(err, ErrClosed) {
		t.Errorf("NewStream while closing: %v", err)
	}
	cancel()
	if err := <-closed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a stream open returned %v, want the context's error", err)
	}
	// The open stream still completes, and Close then finishes.
	s.OnRequestHeaders(evenHeaders(), true)
	s.Close()
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.NewStream(context.Background(), StreamInfo{}); !errors.Is(err, ErrClosed) {
		t.Errorf("NewStream after Close: %v", err)
	}
	if st := h.Stats(); st.Instances != 0 || st.Active != 0 {
		t.Errorf("stats after Close %+v", st)
	}
}

// Many goroutines through one host, half of their streams trapping: every stream gets either the plugin's answer or
// the policy's, a healthy stream gets the policy's only because its instance failed in another stream, the
// counters add up, and the pool ends healthy, at its size, with every instance usable.
func TestTrapUnderLoad(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, FailOpen, FailReload} {
		t.Run(policy.String(), func(t *testing.T) {
			const pool, workers, perWorker = 4, 32, 12
			h, rec := newHost(t, Options{Module: wat(t, "trap"), FailurePolicy: policy, PoolSize: pool})
			var answered atomic.Int64 // streams that got the policy's answer
			isPolicy := func(v Verdict) bool {
				if v.Err == nil {
					return false
				}
				if policy == FailOpen {
					return v.Local == nil
				}
				return v.Local != nil && v.Local.Status == 503 && v.Local.Details == "wasm_fail_stream"
			}
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perWorker; i++ {
						s, err := h.NewStream(context.Background(), StreamInfo{})
						if err != nil {
							t.Error(err)
							return
						}
						trap := (w+i)%2 == 0
						in := evenHeaders()
						if trap {
							in = oddHeaders()
						}
						v := s.OnRequestHeaders(in, true)
						switch {
						case trap && !isPolicy(v):
							t.Errorf("trapping stream: %+v", v)
						case !trap && v != (Verdict{}) && !(isPolicy(v) && strings.Contains(v.Err.Error(), "another stream")):
							t.Errorf("healthy stream: %+v", v)
						}
						if isPolicy(v) {
							answered.Add(1)
						} else if v := s.OnResponseHeaders(respHeaders([2]string{"a", "b"}), true); isPolicy(v) && strings.Contains(v.Err.Error(), "another stream") {
							answered.Add(1)
						} else if v != (Verdict{}) {
							t.Errorf("healthy response: %+v", v)
						}
						s.Close()
					}
				}()
			}
			wg.Wait()
			const trapping = workers * perWorker / 2
			st := h.Stats()
			if st.Traps == 0 || st.Traps > trapping || st.Reloads != st.Traps || st.Active != 0 || st.Streams != workers*perWorker {
				t.Errorf("stats %+v, want between 1 and %d traps", st, trapping)
			}
			if policy == FailOpen && (st.FailOpen != uint64(answered.Load()) || st.FailClosed != 0) ||
				policy != FailOpen && (st.FailClosed != uint64(answered.Load()) || st.FailOpen != 0) {
				t.Errorf("stats %+v, %d streams answered by the policy", st, answered.Load())
			}
			if n := len(rec.messages("plugin failed")); uint64(n) != st.Traps {
				t.Errorf("%d failures logged, %d counted", n, st.Traps)
			}
			waitInstances(t, h, pool)
			assertPoolServes(t, h, pool)
		})
	}
}

// assertPoolServes opens two streams per instance at once and checks that each is served, and that together they
// use every instance of the pool.
func assertPoolServes(t *testing.T, h *Host, pool int) {
	t.Helper()
	var held []*Stream
	used := map[*instance]bool{}
	for i := 0; i < 2*pool; i++ {
		s := newStream(t, h)
		if v := s.OnRequestHeaders(evenHeaders(), true); v != (Verdict{}) {
			t.Errorf("stream %d: %+v", i, v)
		}
		used[s.inst] = true
		held = append(held, s)
	}
	for _, s := range held {
		s.Close()
	}
	if len(used) != pool {
		t.Errorf("streams used %d instances, want %d", len(used), pool)
	}
}

func TestConcurrentStreams(t *testing.T) {
	h, _ := newHost(t, Options{Module: guest(t, "headers"), PoolSize: 4})
	const workers, perWorker = 32, 10
	want := [][2]string{
		{":status", "200"}, {":pseudo", "p"}, {"set-cookie", "a=1"}, {"set-cookie", "c=3"}, {"via", "wasm"},
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				s, got := headersRun(t, h, "/add", respHeaders([2]string{"set-cookie", "a=1"}))
				s.Close()
				if !slices.Equal(got, want) {
					t.Errorf("got %q", got)
					return
				}
			}
		}()
	}
	wg.Wait()
	if st := h.Stats(); st.Streams != workers*perWorker || st.Traps != 0 || st.Active != 0 || st.Instances > 4 {
		t.Errorf("stats %+v", st)
	}
}
