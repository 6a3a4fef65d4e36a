package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// browserCandidates are the executables tried in order; the environment variable CHROMIUM replaces them.
var browserCandidates = []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}

// findBrowser returns the path of a Chromium executable, or "".
func findBrowser() string {
	candidates := browserCandidates
	if p := os.Getenv("CHROMIUM"); p != "" {
		candidates = []string{p}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// thirdPartyCookiesBlocked is the profile preference behind "Block third-party cookies" in Chromium's settings,
// written into the fresh profile before the browser starts, as a user who chose it would have it.
const thirdPartyCookiesBlocked = `{"profile":{"cookie_controls_mode":1,"block_third_party_cookies":true}}`

// browser is the one Chromium process the whole test binary shares. Starting it costs about a second; each test
// gets its own browser context (Target.createBrowserContext: a fresh, in-memory cookie jar and cache, like an
// incognito window) so tests never see each other's cookies, and each scenario also uses its own host names.
var browser struct {
	once   sync.Once
	ctx    context.Context // chromedp context of the browser's first tab; parent of every test's tab
	cancel func()
	dir    string
	err    error
}

func TestMain(m *testing.M) {
	// Start the browser while the first test sets up its servers (and, outside CI, builds the filter); tests wait
	// for it in newTab.
	if path := findBrowser(); path != "" {
		go startBrowser(path)
	}
	code := m.Run()
	closeFilters()
	// Wait for a start still under way (no test may have needed the browser), so that it is stopped too.
	browser.once.Do(func() {})
	if browser.cancel != nil {
		browser.cancel()
	}
	if browser.dir != "" {
		os.RemoveAll(browser.dir)
	}
	os.Exit(code)
}

// requireBrowser skips the test when Chromium is missing, or fails it when CI=true: in CI a browser suite that
// silently skips would prove nothing.
func requireBrowser(t *testing.T) string {
	t.Helper()
	path := findBrowser()
	if path != "" {
		return path
	}
	msg := "e2e: Chromium not found (tried " + fmt.Sprint(browserCandidates) + " or $CHROMIUM); " +
		"install it with `apt-get install -y chromium`"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startBrowser launches the shared browser once.
func startBrowser(path string) (context.Context, error) {
	browser.once.Do(func() {
		browser.dir, browser.err = os.MkdirTemp("", "chips-e2e-profile-")
		if browser.err != nil {
			return
		}
		prefs := filepath.Join(browser.dir, "Default", "Preferences")
		if browser.err = os.MkdirAll(filepath.Dir(prefs), 0o755); browser.err != nil {
			return
		}
		if browser.err = os.WriteFile(prefs, []byte(thirdPartyCookiesBlocked), 0o644); browser.err != nil {
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path),
			chromedp.UserDataDir(browser.dir),
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Headless,
			chromedp.DisableGPU,
			chromedp.IgnoreCertErrors, // the test servers use self-signed certificates
			chromedp.WindowSize(1280, 800),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-default-apps", true),
			chromedp.Flag("disable-extensions", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.Flag("password-store", "basic"),
			chromedp.Flag("use-mock-keychain", true),
			// Every scenario's site names (shop1.test, chat1.test, …) resolve to loopback. .test is not a public
			// suffix, so each name is a site of its own.
			chromedp.Flag("host-resolver-rules", "MAP *.test 127.0.0.1"),
		}
		if os.Geteuid() == 0 {
			opts = append(opts, chromedp.NoSandbox) // Chromium refuses to start as root with its sandbox on
		}
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(allocCtx)
		browser.cancel = func() { cancelCtx(); cancelAlloc() }
		// The first Run starts the process; its context must not carry a deadline, which would end the browser.
		if browser.err = chromedp.Do(ctx); browser.err != nil {
			browser.err = fmt.Errorf("e2e: starting %s: %w", path, browser.err)
			return
		}
		browser.ctx = ctx
	})
	return browser.ctx, browser.err
}

// tab is one test's browser tab in a browser context of its own.
type tab struct {
	t   *testing.T
	ctx context.Context // bounded by the test's timeout
	id  cdp.BrowserContextID
}

// tabTimeout bounds everything one test does in its tab.
const tabTimeout = 45 * time.Second

// newTab opens a tab in a fresh browser context of the shared browser. It skips or fails the test when Chromium is
// missing (see requireBrowser). Call it after starting the test's servers: cleanups run last-in first-out, so the
// browser context is then disposed first and its connections are gone when the servers shut down (the proxy's
// graceful shutdown would otherwise wait for the browser's idle HTTP/2 connections).
func newTab(t *testing.T) *tab {
	t.Helper()
	root, err := startBrowser(requireBrowser(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// Open the tab (and its browser context) without a deadline; then bound the test's own actions.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("e2e: opening a tab: %v", err)
	}
	tctx, tcancel := context.WithTimeout(ctx, tabTimeout)
	t.Cleanup(tcancel)
	return &tab{t: t, ctx: tctx, id: chromedp.FromContext(ctx).BrowserContextID}
}

// chatState mirrors window.chatState, which the shop page receives from the widget and the first-party chat page
// keeps itself (host/demo/static/chat.js).
type chatState struct {
	Done          bool   `json:"done"`
	Error         string `json:"error"`
	ClientID      string `json:"clientId"`
	Node          string `json:"node"`
	Handshakes    int    `json:"handshakes"`
	NewBrowser    bool   `json:"newBrowser"` // the last handshake set BAYEUX_BROWSER (the browser sent none)
	Total         int    `json:"total"`
	CookieBack    int    `json:"cookieBack"`
	UnknownClient int    `json:"unknownClient"`
	Connects      []struct {
		Node             string   `json:"node"`
		ServedBy         string   `json:"servedBy"`
		Successful       bool     `json:"successful"`
		Error            string   `json:"error"`
		SawBayeuxBrowser bool     `json:"sawBayeuxBrowser"`
		CookieNames      []string `json:"cookieNames"`
	} `json:"connects"`
	Disconnect *struct {
		Node       string `json:"node"`
		Successful bool   `json:"successful"`
	} `json:"disconnect"`
}

// runChat opens pageURL (a shop page or the chat page) and waits until the chat session it runs is done, then
// returns the state the page saw.
func (tb *tab) runChat(pageURL string) chatState {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(pageURL)); err != nil {
		tb.t.Fatalf("e2e: opening %s: %v", pageURL, err)
	}
	raw, err := chromedp.Run(tb.ctx, chromedp.Poll[[]byte](`window.chatState && window.chatState.done && window.chatState`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		// Show what the page did manage, for the failure message.
		got, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte](`JSON.stringify(window.chatState || null)`))
		tb.t.Fatalf("e2e: chat session on %s did not finish: %v (state: %s)", pageURL, err, got)
	}
	var st chatState
	if err := json.Unmarshal(raw, &st); err != nil {
		tb.t.Fatalf("e2e: decoding chat state %s: %v", raw, err)
	}
	if st.Error != "" {
		tb.t.Fatalf("e2e: chat session on %s failed in the page: %s", pageURL, st.Error)
	}
	return st
}

// cookies returns every cookie of the tab's browser context, partitioned ones included, as the browser stores them.
func (tb *tab) cookies() []*network.Cookie {
	tb.t.Helper()
	res, err := chromedp.CallBrowser(tb.ctx, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: tb.id})
	if err != nil {
		tb.t.Fatalf("e2e: Storage.getCookies: %v", err)
	}
	return res.Cookies
}

// screenshot saves a PNG of the tab's viewport to path (directories created).
func (tb *tab) screenshot(path string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("e2e: screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
}
