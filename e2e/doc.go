// Package e2e proves the filter in real browsers against real clients. A shop page on one site embeds a chat from
// another site through wasmhost's reverse proxy (package host/serve) running the compiled filter, and the tests check
// what the browser really stored and sent back:
//
//   - Chromium (Debian's, driven with chromedp) with third-party cookies blocked, on the demo chat (package
//     host/demo) and on the real CometD: three cometd-nodejs-server nodes and the cometd JavaScript client, pinned in
//     e2e/cometd/package-lock.json (`make cometd` installs them);
//   - Firefox ESR, driven over WebDriver BiDi, as installed and with network.cookie.cookieBehavior = 1.
//
// TestMain starts each browser once before the tests. Pages report what they did with postMessage; the tests wait
// for those reports, never for a timer. Run one part alone with `go test -run 'TestBrowser|TestCometD|TestFirefox'
// ./e2e/`. Without a browser, Node.js or the CometD packages the tests skip locally and fail when CI=true.
package e2e
