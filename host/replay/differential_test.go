package replay

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
)

// sdkFilter runs the module in the SDK's own wazero runner (proxytest.NewWasmVMContext), behind the same
// stream interface our host is used through, so that one replay drives both.
type sdkFilter struct {
	emu      proxytest.HostEmulator
	upstream string
}

type sdkStream struct {
	f  *sdkFilter
	id uint32
}

func (f *sdkFilter) NewStream(context.Context, host.StreamInfo) (stream, error) {
	return &sdkStream{f: f, id: f.emu.InitializeHttpContext()}, nil
}

func (s *sdkStream) OnRequestHeaders(h [][2]string, eos bool) host.Verdict {
	s.f.emu.CallOnRequestHeaders(s.id, h, eos)
	return s.verdict()
}

func (s *sdkStream) OnResponseHeaders(h [][2]string, eos bool) host.Verdict {
	s.f.emu.CallOnResponseHeaders(s.id, h, eos)
	return s.verdict()
}

func (s *sdkStream) verdict() host.Verdict {
	if lr := s.f.emu.GetSentLocalResponse(s.id); lr != nil {
		return host.Verdict{Local: &host.LocalResponse{Status: int(lr.StatusCode), Headers: lr.Headers, Body: lr.Data}}
	}
	return host.Verdict{}
}

func (s *sdkStream) RequestHeaders() [][2]string  { return s.f.emu.GetCurrentRequestHeaders(s.id) }
func (s *sdkStream) ResponseHeaders() [][2]string { return s.f.emu.GetCurrentResponseHeaders(s.id) }
func (s *sdkStream) SetUpstreamAddress(addr string) {
	s.f.emu.SetProperty([]string{"upstream", "address"}, []byte(addr))
}
func (s *sdkStream) Close() { s.f.emu.CompleteHttpContext(s.id) }

// newSDKFilter starts the module in the SDK's runner with cfg. The SDK's emulator is process-global, so only one
// may live at a time: it is torn down when the (sub)test ends.
func newSDKFilter(t *testing.T, module, cfg []byte) *sdkFilter {
	t.Helper()
	vm, err := proxytest.NewWasmVMContext(module)
	if err != nil {
		t.Fatal(err)
	}
	emu, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(vm).WithPluginConfiguration(cfg))
	t.Cleanup(func() { reset(); vm.Close() })
	if st := emu.StartPlugin(); st != types.OnPluginStartStatusOK {
		t.Fatalf("SDK runner: plugin start = %v", st)
	}
	return &sdkFilter{emu: emu}
}

func setCookieCount(h ResponseHead) int {
	n := 0
	for _, kv := range h.Headers {
		if strings.EqualFold(kv[0], "set-cookie") {
			n++
		}
	}
	return n
}

// TestDifferentialAgainstSDKRunner replays the captured responses of testdata/replay through our host and through
// the SDK's own runner with the same .wasm and configuration.
//
// Where the SDK runner is faithful — responses with at most one Set-Cookie — both must produce identical heads.
// It is not faithful for several: its add_header_map_value appends the value onto an existing header of the same
// name and its remove_header_map_value drops only the first, whereas Envoy removes every value and adds a separate
// header (our host follows Envoy). So for those responses the test (1) replays each Set-Cookie on its own through
// both runners, which must agree cookie by cookie, and (2) asserts the runner's known divergence on the whole
// response: our host keeps one header per cookie, the SDK runner does not.
func TestDifferentialAgainstSDKRunner(t *testing.T) {
	module := readFilter(t)
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			h, cfg := caseHost(t, module, name)
			sdk := newSDKFilter(t, module, cfg)
			in, err := os.Open(filepath.Join(goldenDir, name+".in"))
			if err != nil {
				t.Fatal(err)
			}
			heads, err := ParseResponses(in)
			in.Close()
			if err != nil {
				t.Fatal(err)
			}
			ours := Options{Filter: h, Request: caseRequest(t, name), Logger: quiet}
			theirs := Options{open: sdk.NewStream, Request: caseRequest(t, name), Logger: quiet}
			for i, head := range heads {
				got, err := ours.Run(context.Background(), head)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := theirs.Run(context.Background(), head)
				if err != nil {
					t.Fatal(err)
				}
				if setCookieCount(head) <= 1 {
					if !reflect.DeepEqual(normaliseHead(got), normaliseHead(ref)) {
						t.Errorf("head %d: our host and the SDK runner differ\n ours %+v\n sdk  %+v", i+1, got, ref)
					}
					continue
				}
				if setCookieCount(got) != setCookieCount(head) {
					t.Errorf("head %d: our host turned %d Set-Cookie headers into %d", i+1, setCookieCount(head), setCookieCount(got))
				}
				if setCookieCount(ref) == setCookieCount(head) && reflect.DeepEqual(normaliseHead(got), normaliseHead(ref)) {
					t.Errorf("head %d: the SDK runner kept %d separate Set-Cookie headers; its documented divergence is gone, "+
						"so compare whole responses here too", i+1, setCookieCount(ref))
				}
				for _, single := range splitCookies(head) {
					g, err := ours.Run(context.Background(), single)
					if err != nil {
						t.Fatal(err)
					}
					r, err := theirs.Run(context.Background(), single)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(normaliseHead(g), normaliseHead(r)) {
						t.Errorf("head %d, one cookie: our host and the SDK runner differ\n ours %+v\n sdk  %+v", i+1, g, r)
					}
				}
			}
		})
	}
}

// splitCookies makes one response per Set-Cookie of h, each with all of h's other headers.
func splitCookies(h ResponseHead) []ResponseHead {
	var other, cookies [][2]string
	for _, kv := range h.Headers {
		if strings.EqualFold(kv[0], "set-cookie") {
			cookies = append(cookies, kv)
		} else {
			other = append(other, kv)
		}
	}
	out := make([]ResponseHead, 0, len(cookies))
	for _, c := range cookies {
		single := h
		single.Headers = append(append([][2]string{}, other...), c)
		out = append(out, single)
	}
	return out
}

// normaliseHead lowercases names (the SDK runner keeps the caller's casing for untouched headers, Envoy does not)
// and drops Line, which only says where the head was read.
func normaliseHead(h ResponseHead) ResponseHead {
	h.Line = 0
	hs := make([][2]string, len(h.Headers))
	for i, kv := range h.Headers {
		hs[i] = [2]string{strings.ToLower(kv[0]), kv[1]}
	}
	h.Headers = hs
	return h
}
