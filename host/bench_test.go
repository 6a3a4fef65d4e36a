package host

import (
	"context"
	"runtime"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
)

// chatResponse is a typical chat-server response head: three Set-Cookie among about ten headers.
func chatResponse() [][2]string {
	return [][2]string{
		{":status", "200"},
		{"content-type", "application/json;charset=utf-8"},
		{"cache-control", "no-cache, no-store"},
		{"date", "Tue, 04 Mar 2025 10:00:00 GMT"},
		{"set-cookie", "BAYEUX_BROWSER=1a2b3c4d5e6f; Path=/; Secure; HttpOnly"},
		{"set-cookie", "JSESSIONID=node01abcdefghij.node0; Path=/genesys; Secure"},
		{"x-request-id", "6b3e0d2a-5f4c-4a7e-9c1d-2e8f0a1b3c4d"},
		{"set-cookie", "lb_route=gms-2; Path=/; SameSite=Lax"},
		{"vary", "Accept-Encoding"},
		{"content-length", "512"},
	}
}

func chatRequest() [][2]string {
	return reqHeaders("/genesys/cometd/connect",
		[2]string{"user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0"},
		[2]string{"cookie", "BAYEUX_BROWSER=1a2b3c4d5e6f"},
		[2]string{"accept", "application/json"})
}

// warmUp streams run before a benchmark's clock starts: a Go guest's heap grows to its working size over the first
// few thousand streams, and the benchmarks measure the steady state.
const warmUp = 5000

// BenchmarkStream is the per-stream cost through the host with the no-op guest that only reads the response
// headers: NewStream, request headers, response headers, Close.
func BenchmarkStream(b *testing.B) {
	h, _ := newHost(b, Options{Module: guest(b, "readheaders"), Logger: discard()})
	req, resp := chatRequest(), chatResponse()
	ctx := context.Background()
	stream := func() {
		s, err := h.NewStream(ctx, StreamInfo{SourceAddress: "10.0.0.7:51234"})
		if err != nil {
			b.Fatal(err)
		}
		s.OnRequestHeaders(req, true)
		s.OnResponseHeaders(resp, true)
		_ = s.ResponseHeaders()
		s.Close()
	}
	// Warm up until the guest's heap has reached its steady size (b.Loop starts the clock at its first call).
	for i := 0; i < warmUp; i++ {
		stream()
	}
	b.ReportAllocs()
	for b.Loop() {
		stream()
	}
}

// BenchmarkProxytestStream runs the same guest and headers through the SDK's own wazero runner
// (proxytest.NewWasmVMContext behind its host emulator), for a side-by-side comparison with BenchmarkStream.
func BenchmarkProxytestStream(b *testing.B) {
	vm, err := proxytest.NewWasmVMContext(guest(b, "readheaders"))
	if err != nil {
		b.Fatal(err)
	}
	defer vm.Close()
	emu, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(vm))
	defer reset()
	emu.StartVM()
	emu.StartPlugin()
	req, resp := chatRequest(), chatResponse()
	stream := func() {
		id := emu.InitializeHttpContext()
		emu.CallOnRequestHeaders(id, req, true)
		emu.CallOnResponseHeaders(id, resp, true)
		emu.CompleteHttpContext(id)
	}
	for i := 0; i < warmUp; i++ {
		stream()
	}
	b.ReportAllocs()
	for b.Loop() {
		stream()
	}
}

// BenchmarkStreamHostOverhead is BenchmarkStream with a guest whose callbacks do nothing and whose allocator is a
// bump pointer (minimal.wat): what is left is the host's own per-stream cost, wazero's call overhead included.
func BenchmarkStreamHostOverhead(b *testing.B) {
	h, _ := newHost(b, Options{Module: wat(b, "minimal"), Logger: discard()})
	req, resp := chatRequest(), chatResponse()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := h.NewStream(ctx, StreamInfo{SourceAddress: "10.0.0.7:51234"})
		if err != nil {
			b.Fatal(err)
		}
		s.OnRequestHeaders(req, true)
		s.OnResponseHeaders(resp, true)
		_ = s.ResponseHeaders()
		s.Close()
	}
}

// BenchmarkStreamParallel is BenchmarkStream from GOMAXPROCS goroutines at once through a pool of GOMAXPROCS
// instances: what the per-instance locks and the least-loaded choice cost when streams contend for instances.
func BenchmarkStreamParallel(b *testing.B) {
	h, _ := newHost(b, Options{Module: guest(b, "readheaders"), Logger: discard(), PoolSize: runtime.GOMAXPROCS(0)})
	req, resp := chatRequest(), chatResponse()
	ctx := context.Background()
	stream := func() {
		s, err := h.NewStream(ctx, StreamInfo{SourceAddress: "10.0.0.7:51234"})
		if err != nil {
			b.Error(err)
			return
		}
		s.OnRequestHeaders(req, true)
		s.OnResponseHeaders(resp, true)
		_ = s.ResponseHeaders()
		s.Close()
	}
	for i := 0; i < warmUp*runtime.GOMAXPROCS(0); i++ {
		stream()
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			stream()
		}
	})
}
