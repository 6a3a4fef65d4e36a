// Command readheaders is the no-op baseline guest: it only reads the response headers. Benchmarks compare the real
// filter against it to isolate the filter's own work from the cost of the host and the SDK.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if _, err := proxywasm.GetHttpResponseHeaders(); err != nil {
		proxywasm.LogErrorf("readheaders: %v", err)
	}
	return types.ActionContinue
}
