package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// firefoxCandidates are the executables tried in order; the environment variable FIREFOX replaces them.
var firefoxCandidates = []string{"/usr/bin/firefox-esr", "firefox-esr", "firefox"}

// firefoxMode is a cookie setting of Firefox under test, written into the profile before the browser starts.
type firefoxMode struct {
	name  string
	prefs map[string]any // user.js preferences
}

// The two modes the suite runs Firefox in: as installed (Total Cookie Protection: third-party cookies are kept
// in a jar per top-level site), and with third-party cookies blocked outright
// (network.cookie.cookieBehavior = 1, "Cross-site cookies: all" in the settings' custom mode).
var (
	firefoxDefault = firefoxMode{name: "default", prefs: map[string]any{}}
	firefoxBlocked = firefoxMode{name: "cookieBehavior=1", prefs: map[string]any{"network.cookie.cookieBehavior": 1}}
)

// firefoxProfilePrefs keep a test browser quiet: no first-run pages, no updates, no telemetry or studies. Firefox
// applies its own recommended automation preferences when its remote agent starts (remote.prefs.recommended).
var firefoxProfilePrefs = map[string]any{
	"browser.shell.checkDefaultBrowser":           false,
	"browser.startup.homepage_override.mstone":    "ignore",
	"datareporting.policy.dataSubmissionEnabled":  false,
	"toolkit.telemetry.reportingpolicy.firstRun":  false,
	"app.update.disabledForTesting":               true,
	"app.normandy.enabled":                        false,
	"messaging-system.rsexperimentloader.enabled": false,
}

// firefox is one Firefox process with its WebDriver BiDi session, shared by the tests of one mode; each test gets
// a user context of its own (a separate cookie jar, like a container tab).
type firefox struct {
	mode firefoxMode
	cmd  *exec.Cmd
	dir  string
	conn *bidiConn

	mu      sync.Mutex
	reports map[string]*pageReports // by script.message channel, one per tab
}

// firefoxes are the running browsers by mode name, started by TestMain.
var firefoxes = map[string]*firefox{}

// startFirefoxes launches Firefox once for each mode, when it is installed.
func startFirefoxes() error {
	path := findExecutable("FIREFOX", firefoxCandidates)
	if path == "" {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	started := make([]*firefox, 2)
	for i, m := range []firefoxMode{firefoxDefault, firefoxBlocked} {
		wg.Go(func() { started[i], errs[i] = startFirefox(path, m) })
	}
	wg.Wait()
	for i, fx := range started {
		if fx != nil {
			firefoxes[fx.mode.name] = fx
		}
		if errs[i] != nil {
			return errs[i]
		}
	}
	return nil
}

// startFirefox starts one headless Firefox with a fresh profile and opens a BiDi session on it. Firefox says on
// stderr where it listens once its remote agent is up.
func startFirefox(path string, mode firefoxMode) (*firefox, error) {
	dir, err := os.MkdirTemp("", "chips-e2e-firefox-")
	if err != nil {
		return nil, err
	}
	fx := &firefox{mode: mode, dir: dir, reports: make(map[string]*pageReports)}
	var prefs strings.Builder
	for _, set := range []map[string]any{firefoxProfilePrefs, mode.prefs} {
		for k, v := range set {
			val, _ := json.Marshal(v)
			fmt.Fprintf(&prefs, "user_pref(%q, %s);\n", k, val)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "user.js"), []byte(prefs.String()), 0o644); err != nil {
		return fx, err
	}
	fx.cmd = exec.Command(path, "--headless", "--no-remote", "--profile", dir, "--remote-debugging-port=0", "about:blank")
	stderr, err := fx.cmd.StderrPipe()
	if err != nil {
		return fx, err
	}
	if err := fx.cmd.Start(); err != nil {
		return fx, fmt.Errorf("e2e: Firefox (%s) did not start: %w", path, err)
	}
	lines := bufio.NewScanner(stderr)
	const ready = "WebDriver BiDi listening on "
	var endpoint string
	var said []string
	for endpoint == "" && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), ready); ok {
			endpoint = strings.TrimSpace(rest)
		} else if len(said) < 20 {
			said = append(said, lines.Text())
		}
	}
	if endpoint == "" {
		return fx, fmt.Errorf("e2e: Firefox (%s, %s) ended without starting WebDriver BiDi: %s", path, mode.name,
			strings.Join(said, "\n"))
	}
	go io.Copy(io.Discard, stderr) // Firefox keeps writing; a full pipe would stall it
	fx.conn, err = dialBiDi(context.Background(), endpoint+"/session", fx.event)
	if err != nil {
		return fx, err
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"acceptInsecureCerts": true, // the test servers use self-signed certificates
	}}}
	if err := fx.conn.call(context.Background(), "session.new", caps, nil); err != nil {
		return fx, err
	}
	if err := fx.conn.call(context.Background(), "session.subscribe",
		map[string]any{"events": []string{"script.message"}}, nil); err != nil {
		return fx, err
	}
	return fx, nil
}

// event routes script.message events to the tab whose channel they name.
func (fx *firefox) event(method string, params json.RawMessage) {
	if method != "script.message" {
		return
	}
	var m struct {
		Channel string `json:"channel"`
		Data    struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"data"`
	}
	if json.Unmarshal(params, &m) != nil || m.Data.Type != "string" {
		return
	}
	fx.mu.Lock()
	r := fx.reports[m.Channel]
	fx.mu.Unlock()
	if r != nil {
		r.push(m.Data.Value)
	}
}

// stop ends the session and the process, and removes the profile.
func (fx *firefox) stop() {
	if fx.conn != nil {
		fx.conn.call(context.Background(), "browser.close", map[string]any{}, nil)
		fx.conn.close()
	}
	if fx.cmd != nil && fx.cmd.Process != nil {
		fx.cmd.Process.Kill()
		fx.cmd.Wait()
	}
	os.RemoveAll(fx.dir)
}

// stopFirefoxes stops every Firefox TestMain started.
func stopFirefoxes() {
	for _, fx := range firefoxes {
		fx.stop()
	}
}

// foxTab is one test's Firefox tab in a user context of its own.
type foxTab struct {
	t           *testing.T
	fx          *firefox
	ctx         context.Context
	userContext string
	context_    string // the tab's browsing context id
	seen        *pageReports
}

// newFoxTab opens a tab in a fresh user context of the Firefox running in mode. It skips or fails the test when
// Firefox is missing (see requireBrowser).
func newFoxTab(t *testing.T, mode firefoxMode) *foxTab {
	t.Helper()
	fx := firefoxes[mode.name]
	if fx == nil {
		requireBrowser(t, "Firefox", "FIREFOX", firefoxCandidates, "apt-get install -y firefox-esr")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ft := &foxTab{t: t, fx: fx, ctx: ctx, seen: newPageReports()}
	var uc struct {
		UserContext string `json:"userContext"`
	}
	if err := fx.conn.call(ctx, "browser.createUserContext", map[string]any{}, &uc); err != nil {
		t.Fatal(err)
	}
	ft.userContext = uc.UserContext
	t.Cleanup(func() {
		fx.conn.call(context.Background(), "browser.removeUserContext", map[string]any{"userContext": uc.UserContext}, nil)
	})
	var bc struct {
		Context string `json:"context"`
	}
	if err := fx.conn.call(ctx, "browsingContext.create",
		map[string]any{"type": "tab", "userContext": uc.UserContext}, &bc); err != nil {
		t.Fatal(err)
	}
	ft.context_ = bc.Context
	channel := "chips-reports-" + bc.Context
	fx.mu.Lock()
	fx.reports[channel] = ft.seen
	fx.mu.Unlock()
	if err := fx.conn.call(ctx, "script.addPreloadScript", map[string]any{
		"functionDeclaration": observeReports,
		"arguments":           []any{map[string]any{"type": "channel", "value": map[string]any{"channel": channel}}},
		"contexts":            []string{bc.Context},
	}, nil); err != nil {
		t.Fatal(err)
	}
	return ft
}

func (ft *foxTab) open(pageURL string) {
	ft.t.Helper()
	ft.seen.clear()
	err := ft.fx.conn.call(ft.ctx, "browsingContext.navigate",
		map[string]any{"context": ft.context_, "url": pageURL, "wait": "complete"}, nil)
	if err != nil {
		ft.t.Fatalf("e2e: opening %s in Firefox: %v", pageURL, err)
	}
}

func (ft *foxTab) reports() *pageReports    { return ft.seen }
func (ft *foxTab) context() context.Context { return ft.ctx }
