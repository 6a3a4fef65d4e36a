//go:build !linux

package bench

import "time"

// threadCPUTime is only implemented on Linux; elsewhere the cpu-ns/op metric is left out.
func threadCPUTime() (time.Duration, bool) { return 0, false }
