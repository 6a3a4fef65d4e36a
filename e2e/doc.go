// Package e2e proves the filter in a real browser: Debian's Chromium, driven with chromedp, blocks third-party
// cookies (profile preference), opens a shop page on one site that embeds the demo chat (package host/demo) from
// another site through wasmhost's reverse proxy (package host/serve) running the compiled filter, and the tests
// check what the browser really stored and sent back.
//
// Run the browser suite alone with `go test -run TestBrowser ./e2e/`. Without Chromium the tests skip locally and fail
// when CI=true; install it with `apt-get install -y chromium`.
package e2e
