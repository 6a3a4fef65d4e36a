package host

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// Each refused module fails New with the message Envoy logs for it, prefixed with the component.
func TestNewRefusesModules(t *testing.T) {
	cases := []struct {
		module string
		want   string
	}{
		{"noabi", "wasmhost: Missing or unknown Proxy-Wasm ABI version"},
		{"badsig", "wasmhost: Bad function signature for: proxy_on_request_headers, want: i32, i32, i32 -> i32, but the module exports: i32, i32 -> i32"},
		{"badimport", "wasmhost: Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.fd_filestat_get"},
		{"nomalloc", "wasmhost: Wasm module is missing malloc function."},
		{"badimporttype", "wasmhost: Failed to load Wasm module due to an import type mismatch: env.proxy_log, want: i32, i32 -> i32, but host exports: i32, i32, i32 -> i32"},
		// cpp-host runs _start under the start-up restriction, which does not list proc_exit: the VM traps.
		{"command", "wasmhost: _initialize: restricted_callback: wasi_snapshot_preview1.proc_exit called during _start (not allowed there by proxy-wasm-cpp-host c4d7bb0)"},
	}
	for _, c := range cases {
		t.Run(c.module, func(t *testing.T) {
			h, err := New(context.Background(), Options{Module: wat(t, c.module), Logger: discard()})
			if err == nil {
				h.Close(context.Background())
				t.Fatal("New accepted the module")
			}
			got := err.Error()
			if c.module == "command" {
				// wazero appends the wasm stack to a trap raised by a host function; the hint comes last.
				if !strings.HasPrefix(got, c.want) || !strings.HasSuffix(got, "(a module that exports _start is a WASI command; build the plugin with -buildmode=c-shared)") {
					t.Fatalf("err = %q\nwant  %q…", got, c.want)
				}
				return
			}
			if got != c.want {
				t.Fatalf("err = %q\nwant  %q", got, c.want)
			}
		})
	}
}

// A module that imports fd_filestat_get is refused under Envoy 1.33 and loads under cpp-host 94091cd, which has
// it. Widening AllowedImports cannot make a host offer a function its profile lacks: it still refuses to link.
func TestAllowedImportsOption(t *testing.T) {
	h, _ := newHost(t, Options{Module: wat(t, "badimport"), Envoy: "94091cd"})
	s := newStream(t, h)
	if v := s.OnRequestHeaders(reqHeaders("/"), true); v.Err != nil {
		t.Fatal(v.Err)
	}
	s.Close()
	allowed, _ := EnvoyImports("1.33")
	allowed = append(allowed, "wasi_snapshot_preview1.fd_filestat_get")
	_, err := New(context.Background(), Options{Module: wat(t, "badimport"), AllowedImports: allowed, Logger: discard()})
	if want := "wasmhost: Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.fd_filestat_get (this host does not implement it)"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestNewRejectedConfiguration(t *testing.T) {
	module := guest(t, "lifecycle")
	cases := []struct {
		opts Options
		want string
	}{
		{Options{VMConfig: []byte("reject")}, "wasmhost: plugin rejected its VM configuration (proxy_on_vm_start returned false); see its log"},
		{Options{PluginConfig: []byte("reject")}, "wasmhost: plugin rejected its configuration (proxy_on_configure returned false); see its log"},
	}
	for _, c := range cases {
		o := c.opts
		o.Module, o.Logger, o.CacheDir = module, discard(), testCacheDir
		_, err := New(context.Background(), o)
		if err == nil || err.Error() != c.want {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	module := wat(t, "minimal")
	cases := []struct {
		opts Options
		want string
	}{
		{Options{}, "wasmhost: options: Module is empty"},
		{Options{Module: module, PoolSize: -1}, "wasmhost: options: PoolSize -1 is negative"},
		{Options{Module: module, FailurePolicy: 9}, "wasmhost: options: unknown FailurePolicy 9"},
		{Options{Module: module, Env: map[string]string{"A=B": "x"}}, `wasmhost: options: Env: invalid variable "A=B"`},
		{Options{Module: []byte("not wasm")}, "wasmhost: Failed to parse corrupted Wasm module"},
	}
	for _, c := range cases {
		c.opts.Logger = discard()
		_, err := New(context.Background(), c.opts)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("err = %v, want prefix %q", err, c.want)
		}
	}
}

func TestParseFailurePolicy(t *testing.T) {
	for in, want := range map[string]FailurePolicy{
		"closed": FailClosed, "open": FailOpen, "reload": FailReload,
		"FAIL_CLOSED": FailClosed, "Fail_Open": FailOpen, " reload ": FailReload,
	} {
		got, err := ParseFailurePolicy(in)
		if err != nil || got != want {
			t.Errorf("ParseFailurePolicy(%q) = %v, %v", in, got, err)
		}
		if back, _ := ParseFailurePolicy(got.String()); back != got {
			t.Errorf("String() of %v does not parse back", got)
		}
	}
	if _, err := ParseFailurePolicy("sometimes"); err == nil || !strings.HasPrefix(err.Error(), "wasmhost: failure policy: ") {
		t.Errorf("err = %v", err)
	}
}

// The start-up order is proxy-wasm-cpp-host's: _initialize, then the root context is created before
// proxy_on_vm_start, then proxy_on_configure; each stream then gets context create, its HTTP callbacks, and
// proxy_on_log, proxy_on_done, proxy_on_delete when it closes.
func TestLifecycleOrder(t *testing.T) {
	h, rec := newHost(t, Options{Module: wat(t, "lifecycle")})
	startup := []string{"_initialize", "context_create root", "vm_start", "configure"}
	if got := guestLines(rec); !slices.Equal(got, startup) {
		t.Fatalf("start-up = %q, want %q", got, startup)
	}
	s := newStream(t, h)
	s.OnRequestHeaders(reqHeaders("/"), false)
	s.OnRequestBody([]byte("a"), true)
	s.OnResponseHeaders(respHeaders(), false)
	s.OnResponseBody([]byte("b"), true)
	s.Close()
	want := append(startup, "context_create stream", "request_headers", "request_body", "response_headers", "response_body", "log", "done", "delete")
	if got := guestLines(rec); !slices.Equal(got, want) {
		t.Fatalf("calls = %q\nwant    %q", got, want)
	}

	// A stream closed before any callback still gets its context and the three closing callbacks, as Envoy's
	// access log hook creates the context when the filter never saw the stream.
	s = newStream(t, h)
	s.Close()
	want = append(want, "context_create stream", "log", "done", "delete")
	if got := guestLines(rec); !slices.Equal(got, want) {
		t.Fatalf("calls = %q\nwant    %q", got, want)
	}
}

// guestLines returns what the plugin logged through proxy_log, in order.
func guestLines(rec *logRecorder) []string {
	var out []string
	for _, r := range rec.all() {
		if msg, ok := strings.CutPrefix(r, "INFO "); ok && strings.Contains(r, "context_id=") {
			out = append(out, msg[:strings.Index(msg, " context_id=")])
		}
	}
	return out
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
