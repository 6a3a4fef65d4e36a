package e2e

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// TestMain starts the browsers once, before any test, and stops them after the last: a first start on a fresh
// machine builds caches and may take long, and no test waits for it. A browser that is installed but does not
// start ends the run with a message saying so: every test in it would fail for the same reason.
func TestMain(m *testing.M) {
	var chromiumErr, firefoxErr error
	var wg sync.WaitGroup
	wg.Go(func() { chromiumErr = startChromium() })
	wg.Go(func() { firefoxErr = startFirefoxes() })
	wg.Wait()
	if err := errors.Join(chromiumErr, firefoxErr); err != nil {
		stopChromium()
		stopFirefoxes()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	closeFilters()
	stopChromium()
	stopFirefoxes()
	os.Exit(code)
}
