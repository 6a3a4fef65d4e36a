package host

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// Every WASI function has a .wat guest in testdata/wat/wasi that calls it with good and bad arguments and traps
// when an answer (status, what is written, what is left alone) differs from proxy-wasm-cpp-host's. A guest named
// name.wat answers the same under every profile; name.<commit>.wat only under the profile of that cpp-host commit,
// and under the others it must not load (the function is missing) or, for poll_oneoff, it traps.
func TestWASIGuests(t *testing.T) {
	dir := filepath.Join(testwasm.RepoRoot(), "testdata", "wat", "wasi")
	files, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
	covered := map[string]map[string]bool{} // profile -> WASI functions with a guest
	for _, p := range envoyProfiles {
		covered[p.Name] = map[string]bool{}
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".wasm")
		_, only, _ := strings.Cut(name, ".")
		module, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		info, err := Inspect(module)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range envoyProfiles {
			t.Run(name+"/"+p.Name, func(t *testing.T) {
				runs := only == "" || only == p.CppHost
				h, err := New(context.Background(), Options{Module: module, Envoy: p.Name, PoolSize: 1, Env: map[string]string{"B": "2", "A": "xy"},
					Logger: discard()})
				if !runs {
					if err == nil {
						s := newStream(t, h)
						v := s.OnRequestHeaders(reqHeaders("/"), true)
						s.Close()
						h.Close(context.Background())
						if v.Err == nil {
							t.Fatalf("a guest written for cpp-host %s passes under %s", only, p)
						}
					} else if !strings.Contains(err.Error(), "missing import") {
						t.Fatalf("New: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				defer h.Close(context.Background())
				s := newStream(t, h)
				v := s.OnRequestHeaders(reqHeaders("/"), true)
				s.Close()
				if v != (Verdict{}) {
					t.Fatalf("an answer differs from cpp-host %s's: %+v", p.CppHost, v)
				}
				for _, imp := range info.Imports {
					if imp.Module == wasiModule {
						covered[p.Name][imp.Name] = true
					}
				}
			})
		}
	}
	for _, p := range envoyProfiles {
		var missing []string
		for _, f := range p.wasi {
			if !covered[p.Name][f.name] {
				missing = append(missing, f.name)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s: WASI functions without a passing guest: %v", p, missing)
		}
	}
}

// fd_write's records: one per call, the trailing newline removed, stdout at info and stderr at error. The guest's
// last call has nwritten outside memory: cpp-host logs first and answers EFAULT after, so it is logged too.
func TestWASIWriteIsLogged(t *testing.T) {
	module, err := os.ReadFile(filepath.Join(testwasm.RepoRoot(), "testdata", "wat", "wasi", "fd_write.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	h, rec := newHost(t, Options{Module: module})
	s := newStream(t, h)
	s.OnRequestHeaders(reqHeaders("/"), true)
	s.Close()
	got := rec.messages("hello")
	want := []string{"INFO hello stream=stdout context_id=2", "ERROR hello stream=stderr context_id=2", "INFO hello stream=stdout context_id=2"}
	if !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

// The restricted callbacks: poll_oneoff from _initialize, and from the allocator a host function runs, traps under
// cpp-host c4d7bb0 and is allowed under 94091cd; the calls both allow pass.
func TestRestrictedCallbacks(t *testing.T) {
	init := wat(t, "restrict_init")
	_, err := New(context.Background(), Options{Module: init, Logger: discard()})
	if err == nil || !strings.HasPrefix(err.Error(), "wasmhost: _initialize: restricted_callback: wasi_snapshot_preview1.poll_oneoff called during _initialize (not allowed there by proxy-wasm-cpp-host c4d7bb0)") {
		t.Errorf("1.33, poll_oneoff in _initialize: err = %v", err)
	}
	h, _ := newHost(t, Options{Module: init, Envoy: "94091cd"})
	_ = h

	alloc := wat(t, "restrict_alloc")
	h, _ = newHost(t, Options{Module: alloc})
	s := newStream(t, h)
	v := s.OnRequestHeaders(reqHeaders("/poll"), true)
	s.Close()
	if v.Err == nil || !strings.Contains(v.Err.Error(), "restricted_callback: wasi_snapshot_preview1.poll_oneoff called during the allocator (malloc)") || v.Local == nil || v.Local.Status != 503 {
		t.Errorf("1.33, poll_oneoff in malloc: verdict %+v", v)
	}
	s = newStream(t, h)
	v = s.OnRequestHeaders(reqHeaders("/log"), true)
	s.Close()
	if v != (Verdict{}) {
		t.Errorf("1.33, proxy_log, fd_write and clock_time_get in malloc: verdict %+v", v)
	}
	s = newStream(t, h)
	v = s.OnRequestHeaders(reqHeaders("/yield"), true)
	s.Close()
	if v.Err == nil || !strings.Contains(v.Err.Error(), "restricted_callback: wasi_snapshot_preview1.sched_yield called during the allocator (malloc)") {
		t.Errorf("1.33, sched_yield in malloc: verdict %+v", v)
	}

	h, _ = newHost(t, Options{Module: alloc, Envoy: "94091cd"})
	s = newStream(t, h)
	v = s.OnRequestHeaders(reqHeaders("/poll"), true)
	s.Close()
	if v != (Verdict{}) {
		t.Errorf("94091cd, poll_oneoff in malloc: verdict %+v", v)
	}
}

// Envoy's random_get refuses more than 64 KiB at once (EINVAL), and Go's crypto/rand, which is random_get on
// wasip1 without chunking, treats any failure as fatal: a Go guest reading more than 64 KiB in one call dies. The
// filter reads a 12-byte nonce.
func TestRandomReadLimit(t *testing.T) {
	h, rec := newHost(t, Options{Module: guest(t, "randomread")})
	s := newStream(t, h)
	v := s.OnRequestHeaders(reqHeaders("/65536"), true)
	s.Close()
	if v != (Verdict{}) {
		t.Fatalf("64 KiB: verdict %+v", v)
	}
	s = newStream(t, h)
	v = s.OnRequestHeaders(reqHeaders("/65537"), true)
	s.Close()
	if v.Err == nil || !strings.Contains(v.Err.Error(), "wasm error: unreachable") {
		t.Fatalf("64 KiB + 1: verdict %+v, want a fatal error", v)
	}
	if got := rec.messages("crypto/rand: failed to read random data"); len(got) == 0 {
		t.Errorf("the guest did not report crypto/rand's failure on stderr")
	}
}
