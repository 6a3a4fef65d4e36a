// Command filter is the chips-proxy-wasm proxy-wasm HTTP filter. Built for wasip1 as a reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/filter.wasm ./filter
//
// It makes response cookies survive third-party-cookie blocking (SameSite=None; Secure; Partitioned, per the
// configured policy) and, when enabled, issues and honours a sealed session-affinity cookie. This package is only
// glue between the proxy-wasm SDK and the SDK-free packages that hold the logic: config, rewrite, cookie, affinity
// and seal.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}
