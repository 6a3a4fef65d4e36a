package host

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// testCacheDir keeps wazero's compiled guests between test runs: compiling a Go guest is the slowest part of these
// tests, and the cache is keyed by the module's bytes and wazero's version, so a stale entry cannot be used.
var testCacheDir = filepath.Join(testwasm.RepoRoot(), "build", "wazero-cache")

// guest builds the Go guest host/testdata/guests/<name> and returns its bytes.
func guest(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(testwasm.Build(tb, "./host/testdata/guests/"+name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// wat returns the assembled .wat guest testdata/wat/<name>.wasm.
func wat(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(testwasm.RepoRoot(), "testdata", "wat", name+".wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// logRecorder is an slog handler that keeps every record, for tests that assert on what the plugin logged.
type logRecorder struct {
	mu      sync.Mutex
	records []string
	level   slog.Level
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Level.String())
	b.WriteString(" ")
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	r.mu.Lock()
	r.records = append(r.records, b.String())
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// messages returns the logged messages (without level and attributes) that contain substr.
func (r *logRecorder) messages(substr string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		if strings.Contains(rec, substr) {
			out = append(out, rec)
		}
	}
	return out
}

func (r *logRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

// newHost starts a host for module with test defaults (one instance unless set, the shared compilation cache, a
// recording logger) and closes it when the test ends.
func newHost(tb testing.TB, o Options) (*Host, *logRecorder) {
	tb.Helper()
	rec := &logRecorder{level: slog.LevelDebug - 4}
	if o.Logger == nil {
		o.Logger = slog.New(rec)
	}
	if o.PoolSize == 0 {
		o.PoolSize = 1
	}
	if o.CacheDir == "" {
		o.CacheDir = testCacheDir
	}
	h, err := New(context.Background(), o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return h, rec
}

func newStream(tb testing.TB, h *Host) *Stream {
	tb.Helper()
	s, err := h.NewStream(context.Background(), StreamInfo{SourceAddress: "10.0.0.7:51234", DestinationAddress: "10.0.0.1:8443", Protocol: "HTTP/1.1"})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// values returns every value of name in h, in order.
func values(h [][2]string, name string) []string {
	var out []string
	for _, p := range h {
		if p[0] == name {
			out = append(out, p[1])
		}
	}
	return out
}

func reqHeaders(path string, extra ...[2]string) [][2]string {
	h := [][2]string{{":method", "GET"}, {":path", path}, {":authority", "a.example"}, {":scheme", "https"}}
	return append(h, extra...)
}

func respHeaders(extra ...[2]string) [][2]string {
	return append([][2]string{{":status", "200"}}, extra...)
}
