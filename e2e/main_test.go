package e2e

import (
	"fmt"
	"os"
	"testing"
)

// TestMain starts the browsers once, before any test, and stops them after the last. A browser that is installed
// but does not start ends the run with a message saying so: every browser test would fail for the same reason.
func TestMain(m *testing.M) {
	if err := startChromium(); err != nil {
		stopChromium()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	closeFilters()
	stopChromium()
	os.Exit(code)
}
