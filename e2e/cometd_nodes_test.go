package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// cometdDir holds package.json and package-lock.json, which pin the CometD project's Node.js server and JavaScript
// client, the node script (node.mjs) and the chat page. `make cometd` (npm ci) installs the packages there.
var cometdDir = filepath.Join(testwasm.RepoRoot(), "e2e", "cometd")

// requireCometD returns the node executable, or skips the test (fails it when CI=true) when node or the installed
// packages are missing.
func requireCometD(t *testing.T) string {
	t.Helper()
	node := findExecutable("NODE", []string{"node", "nodejs"})
	_, err := os.Stat(filepath.Join(cometdDir, "node_modules", "cometd-nodejs-server", "package.json"))
	if node != "" && err == nil {
		return node
	}
	msg := "e2e: the real CometD needs Node.js and its packages: run `make cometd` (npm ci in e2e/cometd)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// bayeuxReply is one Bayeux reply a node sent, as node.mjs writes it on stdout.
type bayeuxReply struct {
	Node       string `json:"node"`
	Channel    string `json:"channel"`
	Successful bool   `json:"successful"`
	Error      string `json:"error"`
	ClientID   string `json:"clientId"`
}

// cometdNode is one real CometD server (cometd-nodejs-server in a Node.js process).
type cometdNode struct {
	name   string
	url    *url.URL
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer // read only after the process ended

	mu      sync.Mutex
	replies []bayeuxReply
	exited  chan struct{} // closed when stdout ends
	stop    func() []bayeuxReply
}

// startCometDNode starts a node and returns once it listens (its first stdout line says so). The node stops when
// the test ends, or earlier through stop.
func startCometDNode(t *testing.T, name string) *cometdNode {
	t.Helper()
	node := requireCometD(t)
	n := &cometdNode{name: name, exited: make(chan struct{})}
	n.cmd = exec.Command(node, "node.mjs", name)
	n.cmd.Dir = cometdDir
	n.cmd.Stderr = &n.stderr
	var err error
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("e2e: starting CometD node %s: %v", name, err)
	}
	lines := bufio.NewScanner(stdout)
	var ready struct {
		Listening string `json:"listening"`
	}
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &ready) != nil || ready.Listening == "" {
		n.cmd.Wait()
		t.Fatalf("e2e: CometD node %s did not say it listens (first line %q): %s", name, lines.Text(), &n.stderr)
	}
	if n.url, err = url.Parse(ready.Listening); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(n.exited)
		for lines.Scan() {
			var r bayeuxReply
			if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
				t.Errorf("e2e: CometD node %s wrote %q: %v", name, lines.Text(), err)
				continue
			}
			n.mu.Lock()
			n.replies = append(n.replies, r)
			n.mu.Unlock()
		}
	}()
	n.stop = sync.OnceValue(func() []bayeuxReply {
		n.stdin.Close() // node.mjs stops when its stdin ends
		<-n.exited
		if err := n.cmd.Wait(); err != nil {
			t.Errorf("e2e: CometD node %s: %v: %s", name, err, &n.stderr)
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.replies
	})
	t.Cleanup(func() { n.stop() })
	return n
}
