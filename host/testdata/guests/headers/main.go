// Command headers exercises the header-map host functions. The request path picks what it does, mostly to the
// response headers, and it reports what it observed in headers of its own (x-*), so tests can compare the result
// with Envoy's semantics. On /echo it keeps the request's x-echo value in its context and returns it in the response,
// so that tests can tell concurrent streams of one instance apart.
package main

import (
	"strconv"

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
	echo string
}

func errText(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	path, err := proxywasm.GetHttpRequestHeader(":path")
	must(err)
	c.path = path
	switch path {
	case "/request":
		must(proxywasm.AddHttpRequestHeader("X-Added", "1"))
		must(proxywasm.ReplaceHttpRequestHeader(":path", "/rewritten"))
		must(proxywasm.RemoveHttpRequestHeader("Cookie"))
		must(proxywasm.AddHttpRequestHeader("host", "extra"))
	case "/echo":
		c.echo, err = proxywasm.GetHttpRequestHeader("x-echo")
		must(err)
	case "/request-setpairs":
		must(proxywasm.ReplaceHttpRequestHeaders([][2]string{{"x-z", "1"}, {":method", "POST"}, {"X-Forwarded-For", "a"}, {"x-forwarded-for", "b"}}))
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	switch c.path {
	case "/echo":
		must(proxywasm.AddHttpResponseHeader("x-echo", c.echo))
	case "/add":
		must(proxywasm.AddHttpResponseHeader("Set-Cookie", "c=3"))
		must(proxywasm.AddHttpResponseHeader("via", "wasm"))
		must(proxywasm.AddHttpResponseHeader(":pseudo", "p"))
	case "/replace":
		must(proxywasm.ReplaceHttpResponseHeader("set-cookie", "only=1"))
	case "/add-then-panic":
		must(proxywasm.AddHttpResponseHeader("x-partial", "1"))
		must(proxywasm.RemoveHttpResponseHeader("set-cookie"))
		panic("failing after changing the headers")
	case "/remove":
		must(proxywasm.RemoveHttpResponseHeader("SET-COOKIE"))
		must(proxywasm.RemoveHttpResponseHeader("x-absent"))
	case "/setpairs":
		must(proxywasm.ReplaceHttpResponseHeaders([][2]string{
			{"x-b", "2"}, {":status", "201"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"Content-Type", "text/x"},
		}))
	case "/get":
		first, err := proxywasm.GetHttpResponseHeader("Set-Cookie")
		must(err)
		all, err := proxywasm.GetHttpResponseHeaders()
		must(err)
		_, missing := proxywasm.GetHttpResponseHeader("x-missing")
		_, reqErr := proxywasm.GetHttpRequestHeader(":path")
		_, reqPairsErr := proxywasm.GetHttpRequestHeaders()
		reqAddErr := proxywasm.AddHttpRequestHeader("x-late", "1")
		must(proxywasm.AddHttpResponseHeader("x-first-cookie", first))
		must(proxywasm.AddHttpResponseHeader("x-count", strconv.Itoa(len(all))))
		must(proxywasm.AddHttpResponseHeader("x-missing-err", errText(missing)))
		must(proxywasm.AddHttpResponseHeader("x-req-err", errText(reqErr)))
		must(proxywasm.AddHttpResponseHeader("x-req-pairs-err", errText(reqPairsErr)))
		must(proxywasm.AddHttpResponseHeader("x-req-add-err", errText(reqAddErr)))
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpStreamDone() {
	if c.path != "/log" {
		return
	}
	path, pathErr := proxywasm.GetHttpRequestHeader(":path")
	status, statusErr := proxywasm.GetHttpResponseHeader(":status")
	addErr := proxywasm.AddHttpResponseHeader("x-late", "1")
	proxywasm.LogInfof("log-phase path=%s/%s status=%s/%s add=%s", path, errText(pathErr), status, errText(statusErr), errText(addErr))
}
