// Command lifecycle logs every callback the SDK surfaces ("cb=<name>") so tests can check the order the host calls
// them in. Its configuration can make it reject start-up ("reject" as VM or plugin configuration) or ask for ticks
// ("tick") or refuse to start while the shared data "gate" holds "closed" ("gate"); the request path makes it fail (/panic, /panic-response), buffer and rewrite bodies (/body), or use a
// shared queue (/enqueue).
package main

import (
	"bytes"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vmContext{})
}

var (
	queueID uint32
	ticks   proxywasm.MetricCounter
	items   proxywasm.MetricCounter
)

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) OnVMStart(int) types.OnVMStartStatus {
	proxywasm.LogInfo("cb=vm_start")
	cfg, err := proxywasm.GetVMConfiguration()
	if err == nil && string(cfg) == "reject" {
		return types.OnVMStartStatusFailed
	}
	return types.OnVMStartStatusOK
}

func (*vmContext) NewPluginContext(uint32) types.PluginContext {
	proxywasm.LogInfo("cb=plugin_context")
	return &pluginContext{}
}

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	proxywasm.LogInfo("cb=plugin_start")
	cfg, _ := proxywasm.GetPluginConfiguration()
	switch string(cfg) {
	case "reject":
		return types.OnPluginStartStatusFailed
	case "tick":
		if err := proxywasm.SetTickPeriodMilliSeconds(1); err != nil {
			panic(err)
		}
	case "gate":
		if v, _, err := proxywasm.GetSharedData("gate"); err == nil && string(v) == "closed" {
			proxywasm.LogWarn("gate closed")
			return types.OnPluginStartStatusFailed
		}
	}
	ticks = proxywasm.DefineCounterMetric("lifecycle.ticks")
	items = proxywasm.DefineCounterMetric("lifecycle.queue_items")
	id, err := proxywasm.RegisterSharedQueue("q")
	if err != nil {
		panic(err)
	}
	queueID = id
	return types.OnPluginStartStatusOK
}

func (*pluginContext) OnTick() { ticks.Increment(1) }

func (*pluginContext) OnQueueReady(id uint32) {
	for {
		v, err := proxywasm.DequeueSharedQueue(id)
		if err != nil {
			return
		}
		proxywasm.LogInfof("queue item=%s", v)
		items.Increment(1)
	}
}

func (*pluginContext) OnPluginDone() bool {
	proxywasm.LogInfo("cb=plugin_done")
	return true
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext {
	proxywasm.LogInfo("cb=http_context")
	return &httpContext{}
}

type httpContext struct {
	types.DefaultHttpContext
	path string
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	proxywasm.LogInfo("cb=request_headers")
	c.path, _ = proxywasm.GetHttpRequestHeader(":path")
	switch c.path {
	case "/panic":
		panic("boom in request headers")
	case "/enqueue":
		if err := proxywasm.EnqueueSharedQueue(queueID, []byte("hello")); err != nil {
			panic(err)
		}
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpRequestBody(size int, end bool) types.Action {
	proxywasm.LogInfo("cb=request_body")
	if c.path != "/body" {
		return types.ActionContinue
	}
	if !end {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil {
		panic(err)
	}
	if err := proxywasm.ReplaceHttpRequestBody(bytes.ToUpper(body)); err != nil {
		panic(err)
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	proxywasm.LogInfo("cb=response_headers")
	if c.path == "/panic-response" {
		panic("boom in response headers")
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpResponseBody(int, bool) types.Action {
	proxywasm.LogInfo("cb=response_body")
	if c.path == "/body" {
		if err := proxywasm.AppendHttpResponseBody([]byte("!")); err != nil {
			panic(err)
		}
		if err := proxywasm.PrependHttpResponseBody([]byte(">")); err != nil {
			panic(err)
		}
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpStreamDone() {
	proxywasm.LogInfo("cb=stream_done")
}
