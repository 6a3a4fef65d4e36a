// Package bench measures the filter and the host side by side: per-stream cost against the SDK's own wazero
// runner, the filter against a no-op guest, the native rewriter, the proxy with and without the filter, start-up
// with and without the compilation cache, and a soak of one instance. `make bench` runs everything and writes
// BENCHMARKS.md with bench/cmd/benchreport.
//
// The benchmarks and their helpers are test files; the package itself holds only the result types benchreport
// reads, so the report links neither the host nor package testing.
package bench
