// Command metrics defines a counter, a gauge and a histogram when it starts and updates them on every stream. It
// reports in response headers the counter's value as it saw it and whether defining the counter again returned the
// same id.
package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vmContext{})
}

var (
	requests proxywasm.MetricCounter
	inflight proxywasm.MetricGauge
	sizes    proxywasm.MetricHistogram
	sameID   bool
)

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	requests = proxywasm.DefineCounterMetric("test.requests")
	inflight = proxywasm.DefineGaugeMetric("test.inflight")
	sizes = proxywasm.DefineHistogramMetric("test.header_count")
	sameID = proxywasm.DefineCounterMetric("test.requests") == requests
	return types.OnPluginStartStatusOK
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(n int, _ bool) types.Action {
	requests.Increment(1)
	inflight.Add(1)
	sizes.Record(uint64(n))
	return types.ActionContinue
}

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	inflight.Add(-1)
	if err := proxywasm.AddHttpResponseHeader("x-requests", strconv.FormatUint(requests.Value(), 10)); err != nil {
		panic(err)
	}
	if err := proxywasm.AddHttpResponseHeader("x-same-id", strconv.FormatBool(sameID)); err != nil {
		panic(err)
	}
	return types.ActionContinue
}
