//go:build !wasip1

package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// upstreamAddress returns the "ip:port" of the upstream host serving the stream, "" when the property is missing
// (a local reply: no upstream was chosen).
func upstreamAddress() string {
	addr, _ := proxywasm.GetProperty(upstreamAddressPath)
	return string(addr)
}
