// Command properties reads properties in each phase and reports them: in the request phase as request headers
// "x-prop: <path>=<hex value>|err:<error>", path segments separated by "/", in the response phase as response headers of the same form, and what it
// read while configuring (root context) as request headers "x-root-prop".
package main

import (
	"encoding/hex"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vmContext{})
}

var rootResults []string

func read(path string) string {
	v, err := proxywasm.GetProperty(strings.Split(path, "/"))
	if err != nil {
		return path + "=err:" + err.Error()
	}
	return path + "=" + hex.EncodeToString(v)
}

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	for _, p := range []string{"plugin_name", "plugin_root_id", "plugin_vm_id", "xds/node/id", "request/path", "source/address"} {
		rootResults = append(rootResults, read(p))
	}
	if err := proxywasm.SetProperty([]string{"root_key"}, []byte("x")); err != nil {
		rootResults = append(rootResults, "set root_key=err:"+err.Error())
	}
	return types.OnPluginStartStatusOK
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

var requestPaths = []string{
	"request/path", "request/url_path", "request/host", "request/scheme", "request/method", "request/query",
	"request/id", "request/useragent", "request/referer", "request/protocol", "request/headers/cookie",
	"request/headers/Accept", "request/headers", "request/size", "request/total_size", "request/duration",
	"source/address", "source/port", "destination/address", "destination/port", "connection/mtls",
	"connection/requested_server_name", "connection/tls_version", "connection/id", "connection_id",
	"upstream/address", "response/code", "xds/node/id", "xds/cluster_name", "xds/route_name", "node/id",
	"plugin_name", "request", "no_such_property", "my_key", "filter_state/wasm.my_key",
}

var responsePaths = []string{
	"request/path", "request/headers", "request/headers/cookie", "request/time", "response/code",
	"response/code_details", "response/headers/set-cookie", "response/headers", "upstream/address",
	"upstream/port", "my_key", "my/nested",
}

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	for _, r := range rootResults {
		must(proxywasm.AddHttpRequestHeader("x-root-prop", r))
	}
	must(proxywasm.SetProperty([]string{"my_key"}, []byte("my value")))
	must(proxywasm.SetProperty([]string{"my", "nested"}, []byte("n")))
	for _, p := range requestPaths {
		must(proxywasm.AddHttpRequestHeader("x-prop", read(p)))
	}
	return types.ActionContinue
}

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	for _, p := range responsePaths {
		must(proxywasm.AddHttpResponseHeader("x-prop", read(p)))
	}
	return types.ActionContinue
}

func (*httpContext) OnHttpStreamDone() {
	proxywasm.LogInfof("log-phase %s %s %s", read("request/path"), read("request/duration"), read("response/code"))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
