package affinitye2e

import (
	"bufio"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// The shipped example must give sticky sessions out of the box: the wasmhost command, the filter, and
// testdata/config/affinity.json exactly as shipped, three upstreams, a self-signed certificate.
func TestShippedAffinityConfigWithWasmhostServe(t *testing.T) {
	root := testwasm.RepoRoot()
	filter := testwasm.Filter(t)
	bin := filepath.Join(t.TempDir(), "wasmhost")
	build := exec.Command("go", "build", "-o", bin, "./host/cmd/wasmhost")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building wasmhost: %v\n%s", err, out)
	}

	ups := threeUpstreams(t)
	// Exactly the documented command, run from the repository root: --config alone implies build/filter.wasm.
	if filter != filepath.Join(root, "build", "filter.wasm") {
		t.Fatalf("the filter is at %s, not where the command looks for it", filter)
	}
	args := []string{"serve", "--listen", "127.0.0.1:0", "--config", "testdata/config/affinity.json", "--tls-self-signed"}
	for _, u := range ups {
		args = append(args, "--upstream", u.srv.URL)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The banner's first line names the address once the proxy listens: "wasmhost: proxy on https://127.0.0.1:PORT (...)".
	// Reading it is the wait; the rest of stdout is drained so the process never blocks on a full pipe.
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		cmd.Wait()
		t.Fatalf("wasmhost serve exited before listening (%v):\n%s", lines.Err(), stderr.String())
	}
	banner := lines.Text()
	go io.Copy(io.Discard, stdout)
	t.Cleanup(func() {
		// A graceful stop, as Ctrl-C would do; go test's -timeout reports a stop that hangs.
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("wasmhost serve: %v\n%s", err, stderr.String())
		}
	})
	rest, ok := strings.CutPrefix(banner, "wasmhost: proxy on ")
	if !ok {
		t.Fatalf("unexpected first line %q; stderr:\n%s", banner, stderr.String())
	}
	base, _, _ := strings.Cut(rest, " ")
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" {
		t.Fatalf("proxy address %q: want https (%v)", base, err)
	}

	p := &proxy{url: u, ups: map[string]*upstream{}}
	for _, up := range ups {
		p.ups[up.addr] = up
	}
	b := newBrowser(t, false)
	up := pin(t, b, p, "/chat")
	stays(t, b, p, up, follow)
}
