// Command randomread reads as many bytes from crypto/rand as the request's :path says ("/65536"), in one call. Go's
// crypto/rand is WASI random_get on wasip1, and Envoy refuses more than 64 KiB at once: a larger read is fatal.
package main

import (
	"crypto/rand"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	path, err := proxywasm.GetHttpRequestHeader(":path")
	if err != nil {
		proxywasm.LogErrorf("randomread: %v", err)
		return types.ActionContinue
	}
	n, err := strconv.Atoi(strings.TrimPrefix(path, "/"))
	if err != nil {
		proxywasm.LogErrorf("randomread: %v", err)
		return types.ActionContinue
	}
	buf := make([]byte, n)
	rand.Read(buf)
	proxywasm.LogInfof("randomread: read %d bytes", n)
	return types.ActionContinue
}
