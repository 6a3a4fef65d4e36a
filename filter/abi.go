package main

// proxy_abi_version_0_2_1 advertises the ABI this module is written against. The SDK exports only the 0.2.0 marker,
// yet everything the module imports is in the 0.2.1 specification too, and 0.2.1 is what Envoy ≥ 1.33 implements.
// Envoy's host takes the first marker it finds; for 0.2.0 and 0.2.1 it registers the same host functions this
// module imports (proxy_get_log_level, the only 0.2.1-only one, is not imported), so either reading is safe.
//
//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion021() {}
