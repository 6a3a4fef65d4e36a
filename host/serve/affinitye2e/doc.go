// Package affinitye2e is the end-to-end suite of session affinity, and the only one: the compiled filter
// (build/filter.wasm) in the wasmhost host, behind wasmhost's reverse proxy with several upstreams and Envoy's
// header-based stateful session, driven by a browser-like client with a cookie jar over TLS, and the shipped
// configuration through the wasmhost command itself. It has no code of its own.
package affinitye2e
