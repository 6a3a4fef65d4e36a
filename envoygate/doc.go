// Package envoygate holds the gates that prove the filter survives the Envoy its users run: the real module, under
// the strictest Envoy profile of the host (proxy-wasm-cpp-host as Envoy 1.33 to 1.37 ship it), with many streams
// interleaved in each instance and the Go garbage collector kept busy, through the host library and through
// `wasmhost serve` under concurrent HTTP load. Each gate counts: guest failures, answers of 503 and guest memory
// growth must all be zero. It has no code of its own outside its tests.
package envoygate
