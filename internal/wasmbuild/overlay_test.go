package wasmbuild

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The overlay of the GOROOT in use edits both files, adds the two marker functions, and is the same when generated
// twice (a reproducible build).
func TestOverlayOfThisGoroot(t *testing.T) {
	dir := t.TempDir()
	first, err := WriteOverlay(runtime.GOROOT(), dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := WriteOverlay(runtime.GOROOT(), dir)
	if err != nil || second != first {
		t.Fatalf("second generation: %s, %v; first %s", second, err, first)
	}
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	var o struct{ Replace map[string]string }
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	if len(o.Replace) != 2 {
		t.Fatalf("overlay replaces %d files, want 2: %v", len(o.Replace), o.Replace)
	}
	for orig, repl := range o.Replace {
		src, err := os.ReadFile(repl)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{
			"netpoll_wasip1.go": {"if " + NetpollMarker + "() {", "func " + NetpollMarker + "() bool { return len(subs) == 1 }"},
			"os_wasip1.go":      {"func usleep(usec uint32) {\n\t" + UsleepMarker + "()\n}", "func " + UsleepMarker + "() {}"},
		}[filepath.Base(orig)]
		if want == nil {
			t.Fatalf("unexpected file %s", orig)
		}
		for _, w := range want {
			if !strings.Contains(string(src), w) {
				t.Errorf("%s lacks %q", repl, w)
			}
		}
	}
}

// A runtime whose code has changed fails the build with a message that names the file and the code expected.
func TestOverlayRefusesUnknownRuntime(t *testing.T) {
	goroot := t.TempDir()
	rt := filepath.Join(goroot, "src", "runtime")
	if err := os.MkdirAll(rt, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ netpoll, os, want string }{
		{"package runtime\n\nfunc netpoll(delay int64) {}\n", "package runtime\n",
			"netpoll_wasip1.go: in netpoll, the statement `if len(pollsubs) == 0 { unlock(&mtx); return ... }` was found 0 times, want once"},
		{"package runtime\n\nfunc netpoll(delay int64) {\n\tif len(pollsubs) == 0 {\n\t\tunlock(&mtx)\n\t\treturn\n\t}\n}\n",
			"package runtime\n\nfunc usleep(usec uint32) {}\n", "os_wasip1.go: usleep calls poll_oneoff 0 times, want once"},
	} {
		os.WriteFile(filepath.Join(rt, "netpoll_wasip1.go"), []byte(c.netpoll), 0o644)
		os.WriteFile(filepath.Join(rt, "os_wasip1.go"), []byte(c.os), 0o644)
		_, err := WriteOverlay(goroot, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "wasmbuild: ") ||
			!strings.Contains(err.Error(), "this Go release is not known to the runtime fix") {
			t.Errorf("err = %v\nwant it to contain %q", err, c.want)
		}
	}
	os.Remove(filepath.Join(rt, "os_wasip1.go"))
	if _, err := WriteOverlay(goroot, t.TempDir()); err == nil || !strings.Contains(err.Error(), "the runtime fix needs") {
		t.Errorf("missing file: err = %v", err)
	}
}
