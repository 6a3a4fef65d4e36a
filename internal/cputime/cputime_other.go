//go:build !linux

package cputime

import "time"

// Thread is only implemented on Linux; elsewhere it reports false.
func Thread() (time.Duration, bool) { return 0, false }
