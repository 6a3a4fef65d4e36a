package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// ReadHeadersGuest is the no-op baseline guest: it only reads the response headers.
const ReadHeadersGuest = "./host/testdata/guests/readheaders"

// FilterModule returns the bytes of build/filter.wasm (built when missing, see testwasm.Filter).
func FilterModule(tb testing.TB) []byte {
	tb.Helper()
	return readModule(tb, testwasm.Filter(tb))
}

// GuestModule returns the bytes of a Go guest package built for wasip1 (see testwasm.Build).
func GuestModule(tb testing.TB, pkg string) []byte {
	tb.Helper()
	return readModule(tb, testwasm.Build(tb, pkg))
}

var (
	modMu    sync.Mutex
	modBytes = map[string][]byte{}
)

func readModule(tb testing.TB, path string) []byte {
	tb.Helper()
	modMu.Lock()
	defer modMu.Unlock()
	if b, ok := modBytes[path]; ok {
		return b
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("bench: %v", err)
	}
	modBytes[path] = b
	return b
}

// repoPath resolves a relative output path against the repository root: go test runs a package's tests in the
// package's directory, while paths on a make command line are relative to the root.
func repoPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(testwasm.RepoRoot(), p)
}

// Discard is a logger that drops everything: the filter logs nothing per stream at the default level, and the
// benchmarks must not measure a log handler.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// CacheDir is the compilation cache the benchmarks share with the test suite (build/wazero-cache), so that only
// the start-up benchmark pays for compiling a module.
func CacheDir() string { return testwasm.CacheDir() }

// NewHost starts a host for module with the given pool size and the shared compilation cache, and closes it when
// the test ends.
func NewHost(tb testing.TB, module []byte, poolSize int) *host.Host {
	tb.Helper()
	return newHostCtx(tb, context.Background(), module, poolSize, nil)
}

func newHostCtx(tb testing.TB, ctx context.Context, module []byte, poolSize int, pluginConfig []byte) *host.Host {
	tb.Helper()
	h, err := host.New(ctx, host.Options{
		Module:       module,
		PoolSize:     poolSize,
		PluginConfig: pluginConfig,
		CacheDir:     CacheDir(),
		Logger:       Discard(),
		Envoy:        host.DefaultEnvoy, // the strictest profile, named here because the soak reports it
	})
	if err != nil {
		tb.Fatalf("bench: %v", err)
	}
	tb.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

// hostStreamInfo is the downstream connection of every benchmark stream.
var hostStreamInfo = host.StreamInfo{SourceAddress: "192.0.2.7:51234", Protocol: "HTTP/1.1", TLS: true}

// RunStream runs one chat stream through h: request headers, upstream address, response headers, Close. It
// returns the response headers the filter left, valid until the next stream.
func RunStream(ctx context.Context, h *host.Host, req, resp [][2]string) ([][2]string, error) {
	s, err := h.NewStream(ctx, hostStreamInfo)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if v := s.OnRequestHeaders(req, true); v.Err != nil || v.Local != nil {
		return nil, fmt.Errorf("bench: request headers: %+v", v)
	}
	s.SetUpstreamAddress(ChatUpstreamAddress)
	if v := s.OnResponseHeaders(resp, false); v.Err != nil || v.Local != nil {
		return nil, fmt.Errorf("bench: response headers: %+v", v)
	}
	return s.ResponseHeaders(), nil
}

// MemoryProbe observes the size of the linear memory of the instances a host creates from a context carrying it
// (see Context). The host has no accessor for its guests' memory; wazero lets the caller of New supply the
// allocator behind guest memories, which is how the soak test watches the first instance's memory.
type MemoryProbe struct {
	mu   sync.Mutex
	mems []*probedMemory
}

// Context returns ctx carrying the probe as wazero's memory allocator; pass it to host.New.
func (p *MemoryProbe) Context(ctx context.Context) context.Context {
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(p.allocate))
}

func (p *MemoryProbe) allocate(capacity, maximum uint64) experimental.LinearMemory {
	m := &probedMemory{buf: make([]byte, 0, capacity), max: maximum}
	p.mu.Lock()
	p.mems = append(p.mems, m)
	p.mu.Unlock()
	return m
}

// Sizes returns the current size in bytes of each memory allocated so far, in order of creation.
func (p *MemoryProbe) Sizes() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]uint64, len(p.mems))
	for i, m := range p.mems {
		out[i] = m.size()
	}
	return out
}

type probedMemory struct {
	mu  sync.Mutex
	buf []byte
	max uint64
}

// Reallocate grows the memory the way wazero's own allocator does: in place while the capacity allows, else by
// copying into a larger buffer. Growth only ever happens from the guest's own memory.grow.
func (m *probedMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size > m.max {
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	grown := make([]byte, size, min(m.max, max(size, 2*uint64(cap(m.buf)))))
	copy(grown, m.buf)
	m.buf = grown
	return m.buf
}

func (m *probedMemory) Free() {
	m.mu.Lock()
	m.buf = nil
	m.mu.Unlock()
}

func (m *probedMemory) size() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.buf))
}
