package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// chromiumCandidates are the executables tried in order; the environment variable CHROMIUM replaces them.
var chromiumCandidates = []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}

// thirdPartyCookiesBlocked is the profile preference behind "Block third-party cookies" in Chromium's settings,
// written into the fresh profile before the browser starts, as a user who chose it would have it.
const thirdPartyCookiesBlocked = `{"profile":{"cookie_controls_mode":1,"block_third_party_cookies":true}}`

// chromium is the one Chromium process the whole test binary shares, started by TestMain before any test runs (a
// first start on a fresh machine builds caches and may take long; no test's work waits on it). Each test gets its
// own browser context (Target.createBrowserContext: a fresh, in-memory cookie jar and cache, like an incognito
// window), so tests never see each other's cookies, and each scenario also uses its own host names.
var chromium struct {
	path   string          // "" when Chromium is not installed
	ctx    context.Context // chromedp context of the browser's first tab; parent of every test's tab
	cancel func()
	dir    string
}

// startChromium launches the shared browser, when it is installed. The first Run starts the process; its context
// carries no deadline, which would end the browser.
func startChromium() error {
	chromium.path = findExecutable("CHROMIUM", chromiumCandidates)
	if chromium.path == "" {
		return nil
	}
	dir, err := os.MkdirTemp("", "chips-e2e-chromium-")
	if err != nil {
		return err
	}
	chromium.dir = dir
	prefs := filepath.Join(dir, "Default", "Preferences")
	if err := os.MkdirAll(filepath.Dir(prefs), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(prefs, []byte(thirdPartyCookiesBlocked), 0o644); err != nil {
		return err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium.path),
		chromedp.UserDataDir(dir),
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
	chromium.cancel = func() { cancelCtx(); cancelAlloc() }
	if err := chromedp.Do(ctx); err != nil {
		return fmt.Errorf("e2e: Chromium (%s) did not start: %w", chromium.path, err)
	}
	chromium.ctx = ctx
	return nil
}

// stopChromium ends the shared browser and removes its profile.
func stopChromium() {
	if chromium.cancel != nil {
		chromium.cancel()
	}
	if chromium.dir != "" {
		os.RemoveAll(chromium.dir)
	}
}

// findExecutable returns the first of candidates found on PATH, or the path in the environment variable env
// instead when it is set; "" when none is found.
func findExecutable(env string, candidates []string) string {
	if p := os.Getenv(env); p != "" {
		candidates = []string{p}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// requireBrowser skips the test when a browser is missing, or fails it when CI=true: in CI a browser suite that
// silently skips would prove nothing.
func requireBrowser(t *testing.T, name, env string, candidates []string, install string) {
	t.Helper()
	msg := fmt.Sprintf("e2e: %s not found (tried %v or $%s); install it with `%s`", name, candidates, env, install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// tab is one test's Chromium tab in a browser context of its own.
type tab struct {
	t    *testing.T
	ctx  context.Context // ends with the test
	id   cdp.BrowserContextID
	seen *pageReports
}

// reportBinding is the function observeReports calls in Chromium: a Runtime binding, which the browser answers
// with a Runtime.bindingCalled event.
const reportBinding = "chipsReport"

// newTab opens a tab in a fresh browser context of the shared browser. It skips or fails the test when Chromium is
// missing (see requireBrowser). Call it after starting the test's servers: cleanups run last-in first-out, so the
// browser context is then disposed first and its connections are gone when the servers shut down (the proxy's
// graceful shutdown would otherwise wait for the browser's idle HTTP/2 connections).
func newTab(t *testing.T) *tab {
	t.Helper()
	if chromium.ctx == nil {
		requireBrowser(t, "Chromium", "CHROMIUM", chromiumCandidates, "apt-get install -y chromium")
	}
	seen := newPageReports()
	ctx, cancel := chromedp.NewContext(chromium.ctx, chromedp.WithNewBrowserContext(),
		chromedp.WithListener(func(ev any) {
			if e, ok := ev.(*runtime.EventBindingCalled); ok && e.Name == reportBinding {
				seen.push(e.Payload)
			}
		}))
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, seen: seen}
	if _, err := chromedp.Call(ctx, runtime.AddBinding, runtime.AddBindingParams{Name: reportBinding}); err != nil {
		t.Fatalf("e2e: opening a Chromium tab: %v", err)
	}
	observe := "(" + observeReports + ")((s) => window." + reportBinding + "(s))"
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: observe}); err != nil {
		t.Fatalf("e2e: Page.addScriptToEvaluateOnNewDocument: %v", err)
	}
	tb.id = chromedp.FromContext(ctx).BrowserContextID
	return tb
}

func (tb *tab) open(pageURL string) {
	tb.t.Helper()
	tb.seen.clear()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(pageURL)); err != nil {
		tb.t.Fatalf("e2e: opening %s: %v", pageURL, err)
	}
}

// close closes the tab and disposes of its browser context (and its cookies), so the page sends nothing more.
func (tb *tab) close() {
	tb.t.Helper()
	if err := chromedp.Cancel(tb.ctx); err != nil {
		tb.t.Fatalf("e2e: closing the tab: %v", err)
	}
}

func (tb *tab) reports() *pageReports    { return tb.seen }
func (tb *tab) context() context.Context { return tb.ctx }

// runChat opens pageURL (a shop page or the chat page) and waits until the chat session it runs is done.
func (tb *tab) runChat(pageURL string) chatState {
	tb.t.Helper()
	return runChat(tb.t, tb, pageURL)
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
