package stickytest

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	// Cleanups run last-in first-out: the deadline is lifted only after the graceful stop below has been waited for.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	// Exactly the documented command, run from the repository root: --config alone implies build/filter.wasm.
	if filter != filepath.Join(root, "build", "filter.wasm") {
		t.Fatalf("the filter is at %s, not where the command looks for it", filter)
	}
	args := []string{"serve", "--listen", "127.0.0.1:0", "--config", "testdata/config/affinity.json", "--tls-self-signed"}
	for _, u := range ups {
		args = append(args, "--upstream", u.srv.URL)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = root
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	exited := make(chan struct{})
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// A graceful stop, as Ctrl-C would do; the context's deadline kills it if that hangs.
		cmd.Process.Signal(os.Interrupt)
		<-exited
		if exitErr != nil {
			t.Errorf("wasmhost serve: %v\n%s", exitErr, stderr.String())
		}
	})

	// The banner's first line names the address: "wasmhost: proxy on https://127.0.0.1:PORT (...)".
	base := ""
	for base == "" {
		select {
		case <-exited:
			t.Fatalf("wasmhost serve exited before listening: %v\n%s", exitErr, stderr.String())
		case <-ctx.Done():
			t.Fatalf("wasmhost serve printed no address; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, "wasmhost: proxy on "); ok && strings.Contains(rest, " ") {
				base, _, _ = strings.Cut(rest, " ")
			}
		}
	}
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
