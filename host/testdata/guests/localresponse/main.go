// Command localresponse answers /deny itself from the request headers, and replaces the upstream's response for
// /deny-response, both with proxy_send_local_response.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct {
	types.DefaultHttpContext
	path string
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	c.path, _ = proxywasm.GetHttpRequestHeader(":path")
	if c.path != "/deny" {
		return types.ActionContinue
	}
	headers := [][2]string{{"X-Reason", "denied"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}}
	if err := proxywasm.SendHttpResponse(403, headers, []byte("no entry"), -1); err != nil {
		panic(err)
	}
	return types.ActionPause
}

func (c *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if c.path != "/deny-response" {
		return types.ActionContinue
	}
	if err := proxywasm.SendHttpResponse(502, nil, nil, -1); err != nil {
		panic(err)
	}
	return types.ActionPause
}
