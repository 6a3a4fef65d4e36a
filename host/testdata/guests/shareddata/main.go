// Command shareddata counts streams in shared data with compare-and-swap, retrying on CasMismatch, and reports the
// count it stored (x-hits) and the error a deliberately stale CAS gets (x-stale).
package main

import (
	"errors"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	var hits int
	for attempt := 0; ; attempt++ {
		v, cas, err := proxywasm.GetSharedData("hits")
		n := 0
		switch {
		case errors.Is(err, types.ErrorStatusNotFound):
		case err != nil:
			panic(err)
		default:
			if n, err = strconv.Atoi(string(v)); err != nil {
				panic(err)
			}
		}
		err = proxywasm.SetSharedData("hits", []byte(strconv.Itoa(n+1)), cas)
		if errors.Is(err, types.ErrorStatusCasMismatch) && attempt < 1000 {
			continue
		}
		if err != nil {
			panic(err)
		}
		hits = n + 1
		break
	}
	_, cas, err := proxywasm.GetSharedData("hits")
	if err != nil {
		panic(err)
	}
	stale := proxywasm.SetSharedData("hits", []byte("stale"), cas+1000)
	if err := proxywasm.AddHttpResponseHeader("x-hits", strconv.Itoa(hits)); err != nil {
		panic(err)
	}
	if err := proxywasm.AddHttpResponseHeader("x-stale", stale.Error()); err != nil {
		panic(err)
	}
	return types.ActionContinue
}
