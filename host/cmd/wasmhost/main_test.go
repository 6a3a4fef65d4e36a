package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/serve"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// syncBuffer is a bytes.Buffer safe for a command goroutine writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cacheDir is the compilation cache shared by the repository's tests: the filter is compiled once, not per test.
var cacheDir = testwasm.CacheDir()

// runCmd runs the command line with stdin and returns the exit status, stdout and stderr.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// tinyModule is a hand-assembled module: one function type () -> (), the given function imports, one function and
// the given function exports, all of that type.
func tinyModule(imports [][2]string, exports []string) []byte {
	vec := func(items ...[]byte) []byte {
		out := []byte{byte(len(items))}
		for _, it := range items {
			out = append(out, it...)
		}
		return out
	}
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	section := func(id byte, body []byte) []byte { return append([]byte{id, byte(len(body))}, body...) }
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, vec([]byte{0x60, 0, 0}))...)
	var imps [][]byte
	for _, im := range imports {
		imps = append(imps, append(append(name(im[0]), name(im[1])...), 0x00, 0x00))
	}
	m = append(m, section(2, vec(imps...))...)
	m = append(m, section(3, vec([]byte{0}))...)
	var exps [][]byte
	for _, e := range exports {
		exps = append(exps, append(name(e), 0x00, byte(len(imports))))
	}
	m = append(m, section(7, vec(exps...))...)
	m = append(m, section(10, vec([]byte{2, 0, 0x0b}))...)
	return m
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHelp(t *testing.T) {
	code, out, _ := runCmd(t, "", "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, c := range []string{"replay", "serve", "check", "version"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("top-level help does not list %s:\n%s", c, out)
		}
	}
	for _, c := range []string{"replay", "serve", "check", "version"} {
		code, out, errs := runCmd(t, "", c, "--help")
		if code != 0 || errs != "" {
			t.Errorf("%s --help: exit %d, stderr %q", c, code, errs)
		}
		if !strings.Contains(out, "Examples:\n") && !strings.Contains(out, "Example:\n") {
			t.Errorf("%s --help has no examples:\n%s", c, out)
		}
		if !strings.Contains(out, "wasmhost "+c) || !strings.Contains(out, "Flags:") {
			t.Errorf("%s --help lacks usage or flags:\n%s", c, out)
		}
	}
	if code, _, errs := runCmd(t, ""); code != 2 || !strings.Contains(errs, "Commands:") {
		t.Errorf("no arguments: exit %d, stderr %q", code, errs)
	}
}

func TestUsageErrors(t *testing.T) {
	notWasm := writeFile(t, "not.wasm", []byte("hello"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `wasmhost: unknown command "frobnicate"`},
		{[]string{"replay"}, "wasmhost replay: --wasm is required (see wasmhost replay --help)"},
		{[]string{"replay", "--wasm"}, "wasmhost replay: flag needs an argument: -wasm"},
		{[]string{"replay", "--wasm", "x.wasm", "extra"}, `wasmhost replay: unexpected argument "extra"`},
		{[]string{"replay", "--wasm", "x.wasm", "--log-level", "loud"}, `--log-level: want debug, info, warn or error, got "loud"`},
		{[]string{"replay", "--wasm", "/nonexistent/x.wasm"}, "wasmhost: module: open /nonexistent/x.wasm"},
		{[]string{"replay", "--wasm", notWasm}, "wasmhost: Failed to parse corrupted Wasm module: not a WebAssembly binary"},
		{[]string{"replay", "--wasm", notWasm, "--config", "/nonexistent/c.json"}, "wasmhost: config: open /nonexistent/c.json"},
		{[]string{"replay", "--wasm", notWasm, "--request", "/nonexistent/r"}, "wasmhost: open /nonexistent/r"},
		{[]string{"replay", "--wasm", notWasm, "--env", "=x"}, `wasmhost: --env "=x": want NAME or NAME=VALUE`},
		{[]string{"serve"}, "wasmhost serve: at least one --upstream is required (or --demo)"},
		{[]string{"serve", "--upstream", "ftp://x:1"}, `wasmhost serve: --upstream "ftp://x:1": scheme must be http or https`},
		{[]string{"serve", "--upstream", "http://x:1", "--demo"}, "--demo runs its own upstreams"},
		{[]string{"serve", "--upstream", "x:1", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"serve", "--upstream", "x:1", "--tls-cert", "c", "--tls-key", "k", "--tls-self-signed"}, "mutually exclusive"},
		{[]string{"serve", "--upstream", "x:1", "--failure-policy", "maybe"}, `--failure-policy: want closed, open or reload, got "maybe"`},
		{[]string{"serve", "--upstream", "x:1", "--config", "{}"}, "--config needs --wasm"}, // run from the package directory: no build/filter.wasm here
		{[]string{"serve", "--upstream", "x:1", "--pool", "-1"}, "--pool: want 0 or more"},
		{[]string{"serve", "--upstream", "x:1", "--down-for", "0s"}, "--down-for: want a positive duration"},
		{[]string{"serve", "--upstream", "x:1", "--wasm", notWasm}, "wasmhost: Failed to parse corrupted Wasm module"},
		{[]string{"check"}, "wasmhost check: --wasm is required"},
		{[]string{"check", "--wasm", notWasm, "--envoy", "9.9"}, `wasmhost check: --envoy: wasmhost: envoy: unsupported version "9.9" (supported: 1.33, 1.34, 1.35, 1.36, 1.37, 94091cd)`},
		{[]string{"check", "--wasm", notWasm}, "not a WebAssembly binary"},
		{[]string{"serve", "--envoy", "1.20"}, `wasmhost serve: --envoy: wasmhost: envoy: unsupported version "1.20" (supported: 1.33,`},
		{[]string{"replay", "--wasm", notWasm, "--envoy", "2"}, `wasmhost replay: --envoy: wasmhost: envoy: unsupported version "2" (supported: 1.33,`},
		{[]string{"version", "extra"}, `wasmhost version: unexpected argument "extra"`},
	} {
		code, out, errs := runCmd(t, "", tc.args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", tc.args, code, errs)
		}
		if out != "" {
			t.Errorf("%q: wrote to stdout: %q", tc.args, out)
		}
		if strings.Count(errs, "\n") != 1 || !strings.HasSuffix(errs, "\n") {
			t.Errorf("%q: stderr is not one line: %q", tc.args, errs)
		}
		if !strings.Contains(errs, tc.want) {
			t.Errorf("%q: stderr %q, want it to contain %q", tc.args, errs, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "wasmhost ") || !strings.Contains(out, "wazero ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	if code2, out2, _ := runCmd(t, "", "--version"); code2 != 0 || out2 != out {
		t.Errorf("--version: exit %d %q", code2, out2)
	}
}

func TestCheckIncompatible(t *testing.T) {
	mod := writeFile(t, "sock.wasm", tinyModule([][2]string{{"wasi_snapshot_preview1", "sock_accept"},
		{"wasi_snapshot_preview1", "fd_write"}}, []string{"proxy_abi_version_0_2_1"}))
	code, out, errs := runCmd(t, "", "check", "--wasm", mod)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errs)
	}
	for _, want := range []string{
		"abi version:  0.2.1",
		"imports (2):",
		"wasi_snapshot_preview1.sock_accept  func (void -> void)  MISSING in Envoy 1.33",
		"wasi_snapshot_preview1.fd_write     func (void -> void)  ok",
		"exports (1):",
		`verdict: INCOMPATIBLE with Envoy 1.33: 1 missing import(s); Envoy would say "Failed to load Wasm module ` +
			`due to a missing import: wasi_snapshot_preview1.sock_accept"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	noABI := writeFile(t, "noabi.wasm", tinyModule(nil, []string{"_initialize"}))
	code, out, _ = runCmd(t, "", "check", "--wasm", noABI)
	if code != 1 || !strings.Contains(out, "advertises no Proxy-Wasm ABI version") {
		t.Errorf("module without ABI export: exit %d\n%s", code, out)
	}

	// Compatible imports, but not a loadable plugin (no proxy_on_* exports): the load test says so.
	bare := writeFile(t, "bare.wasm", tinyModule(nil, []string{"proxy_abi_version_0_2_1"}))
	code, out, _ = runCmd(t, "", "check", "--wasm", bare)
	if code != 1 || !strings.Contains(out, "verdict: INCOMPATIBLE: the module does not load: wasmhost: ") {
		t.Errorf("unloadable module: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "", "check", "--wasm", bare, "--load=false")
	if code != 0 || !strings.Contains(out, "verdict: compatible with Envoy 1.33 (ABI 0.2.1)\n") {
		t.Errorf("--load=false: exit %d\n%s", code, out)
	}
}

func TestCheckFilter(t *testing.T) {
	wasm := testwasm.Filter(t)
	code, out, errs := runCmd(t, "", "check", "--wasm", wasm, "--cache-dir", cacheDir, "--config", "../../../testdata/config/affinity.json")
	if code != 0 {
		t.Fatalf("exit %d; stderr %q\n%s", code, errs, out)
	}
	for _, want := range []string{"abi version:  0.2.1", "env.proxy_log", "proxy_on_response_headers",
		"verdict: compatible with Envoy 1.33 (ABI 0.2.1); loaded and configured in this host"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "MISSING") {
		t.Errorf("the filter needs an import Envoy lacks:\n%s", out)
	}
	if want := "go runtime: wasip1, with the poll_oneoff fix"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// The filter built without the runtime fix loads in Envoy 1.33 and dies there under load: check finds the hazard,
// names the Envoy versions it is unsafe on, and fails; under cpp-host 94091cd the same module is compatible.
func TestCheckGoPollHazard(t *testing.T) {
	wasm := testwasm.FilterWithoutRuntimeFix(t)
	code, out, errs := runCmd(t, "", "check", "--wasm", wasm, "--load=false")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q\n%s", code, errs, out)
	}
	for _, want := range []string{
		"go runtime: wasip1, HAZARD: netpoll and usleep throw when poll_oneoff fails (it lacks the fix; golang/go#78513)",
		"unsafe on: Envoy 1.33 to 1.37 (Istio 1.25 to 1.29) (--envoy 1.33, proxy-wasm-cpp-host c4d7bb0)\n",
		"verdict: INCOMPATIBLE with Envoy 1.33: the module loads, but its Go runtime dies when poll_oneoff fails",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = runCmd(t, "", "check", "--wasm", wasm, "--load=false", "--envoy", "94091cd")
	if code != 0 || !strings.Contains(out, "verdict: compatible with Envoy 94091cd (ABI 0.2.1)") {
		t.Errorf("--envoy 94091cd: exit %d; stderr %q\n%s", code, errs, out)
	}
}

func TestReplayFilter(t *testing.T) {
	wasm := testwasm.Filter(t)
	in, err := os.ReadFile("../../../testdata/replay/cometd-handshake.in")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../../testdata/replay/cometd-handshake.golden")
	if err != nil {
		t.Fatal(err)
	}
	// The vendor's example comes out the same on Envoy and on Google Cloud Service Extensions, which has no custom
	// metrics: there the filter says so once and counts nothing.
	for _, platform := range []string{"envoy", "gcp-service-extensions"} {
		code, out, errs := runCmd(t, string(in), "replay", "--platform", platform, "--cache-dir", cacheDir, "--wasm", wasm,
			"--request", "../../../testdata/replay/cometd-handshake.request")
		if code != 0 || out != string(want) {
			t.Errorf("%s: exit %d, stderr %q\n--- got ---\n%s\n--- want ---\n%s", platform, code, errs, out, want)
		}
		if n, wantN := strings.Count(errs, "custom metrics are unavailable"), map[bool]int{true: 1}[platform != "envoy"]; n != wantN {
			t.Errorf("%s: the metrics warning appeared %d times, want %d: %q", platform, n, wantN, errs)
		}
	}

	// Inline configuration.
	code, out, errs := runCmd(t, "HTTP/1.1 200 OK\nSet-Cookie: a=1\n", "replay", "--cache-dir", cacheDir, "--wasm", wasm, "--config",
		`{"cookies":{"same_site":"Lax","partitioned":false}}`)
	if code != 0 || !strings.Contains(out, "set-cookie: a=1; SameSite=Lax\r\n") {
		t.Errorf("inline config: exit %d, stderr %q, out %q", code, errs, out)
	}

	// The plugin refuses a bad configuration: one line, naming the field.
	code, out, errs = runCmd(t, "HTTP/1.1 200 OK\n", "replay", "--cache-dir", cacheDir, "--wasm", wasm, "--config",
		`{"cookies":{"same_site":"none!"}}`)
	if code != 2 || out != "" || errs != "wasmhost: config: cookies.same_site: want \"None\", \"Lax\" or \"Strict\", got \"none!\"\n" {
		t.Errorf("bad config: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs = runCmd(t, "HTTP/1.1 200 OK\n", "replay", "--cache-dir", cacheDir, "--wasm", wasm, "--config",
		"../../../testdata/config/typo.invalid.json")
	if code != 2 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "wasmhost: config: ") {
		t.Errorf("config file with a typo: exit %d, stderr %q", code, errs)
	}

	// Bad input: one line naming head and line, nothing on stdout.
	code, out, errs = runCmd(t, "HTTP/1.1 200 OK\n\nHTTP/1.1 200 OK\nX-A: 1\n  folded\n", "replay", "--cache-dir", cacheDir, "--wasm", wasm)
	if code != 2 || out != "" || !strings.HasPrefix(errs, "wasmhost: replay: input: head 2, line 5: obsolete line folding") ||
		strings.Count(errs, "\n") != 1 {
		t.Errorf("bad input: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// startServeCmd runs `wasmhost serve args...` until the test ends and returns the running proxy.
func startServeCmd(t *testing.T, args ...string) (*serve.Server, *syncBuffer) {
	t.Helper()
	started := make(chan *serve.Server, 1)
	serveStarted = func(s *serve.Server) { started <- s }
	t.Cleanup(func() { serveStarted = nil })
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), &out, &errb) }()
	var srv *serve.Server
	select {
	case srv = <-started:
	case code := <-done:
		cancel()
		t.Fatalf("serve exited %d before listening: %s", code, errb.String())
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, errb.String())
		}
	})
	return srv, &out
}

func TestServeWithFilter(t *testing.T) {
	wasm := testwasm.Filter(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "BAYEUX_BROWSER=abc; Path=/")
		w.Header().Add("Set-Cookie", "JSESSIONID=xyz; Path=/; HttpOnly")
		io.WriteString(w, "hello")
	}))
	defer up.Close()
	srv, out := startServeCmd(t, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tls-self-signed",
		"--wasm", wasm, "--cache-dir", cacheDir, "--config", `{"affinity":{"routing_header":"x-route"}}`, "--upstream", up.URL,
		"--log-level", "warn", "--pool", "2")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL() + "/cometd/handshake")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cookies := resp.Header["Set-Cookie"]
	if resp.ProtoMajor != 2 || string(body) != "hello" || len(cookies) != 2 {
		t.Fatalf("%s %q %q", resp.Proto, body, cookies)
	}
	for _, c := range cookies {
		if !strings.Contains(c, "Partitioned") || !strings.Contains(c, "Secure") {
			t.Errorf("cookie not rewritten by the filter: %q", c)
		}
	}
	// the session header comes from the configuration
	if got := resp.Header.Get("X-Route"); got == "" {
		t.Errorf("no x-route header on a response that picked its upstream (configured routing header ignored?)")
	}

	stats, err := http.Get(srv.AdminURL() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(stats.Body)
	stats.Body.Close()
	for _, want := range []string{"wasmcustom_chips_cookies_rewritten 2\n", "wasmhost_streams_total 1\n",
		`wasmhost_guest_failures_total{policy="closed"} 0`, "wasmhost_requests_total{upstream="} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/stats lacks %q:\n%s", want, b)
		}
	}
	for _, want := range []string{"wasmhost: proxy on " + srv.URL() + " (HTTP/1.1 and HTTP/2)", "curl -k -i " + srv.URL(),
		srv.AdminURL() + "/stats", "session header x-route"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
}

func TestServeWithoutFilter(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "a=1")
	}))
	defer up.Close()
	srv, out := startServeCmd(t, "--listen", "127.0.0.1:0", "--upstream", strings.TrimPrefix(up.URL, "http://"),
		"--log-level", "error")
	resp, err := http.Get(srv.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Set-Cookie"); got != "a=1" {
		t.Errorf("plain proxy changed the cookie: %q", got)
	}
	if got := resp.Header.Get(config.DefaultRoutingHeader); got == "" {
		t.Error("plain proxy does not add the default session header")
	}
	if !strings.Contains(out.String(), "filter:    none") {
		t.Errorf("banner:\n%s", out.String())
	}
}

func TestServeDemo(t *testing.T) {
	srv, out := startServeCmd(t, "--demo", "--demo-shop", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--log-level", "error")
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Errorf("--demo without TLS flags should serve TLS: %s", srv.URL())
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	nodes := map[string]bool{}
	for i := 0; i < 3; i++ {
		resp, err := c.Get(srv.URL() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		nodes[resp.Header.Get("X-Chat-Node")] = true
	}
	if len(nodes) != 3 {
		t.Errorf("requests did not reach the three demo nodes: %v", nodes)
	}
	if !strings.Contains(out.String(), "demo:      open https://shop.localhost:") {
		t.Errorf("banner does not say where the demo is:\n%s", out.String())
	}
}
