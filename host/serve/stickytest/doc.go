// Package stickytest holds the end-to-end tests of session affinity: the compiled filter (build/filter.wasm) in the
// wasmhost host, behind wasmhost's reverse proxy with several upstreams and Envoy's header-based stateful session,
// driven by a browser-like client with a cookie jar over TLS. It has no code of its own.
package stickytest
