//go:build !wasip1

package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// requestHeader returns the first value of a request header, or false when it is absent.
func requestHeader(name string) (string, bool) {
	v, err := proxywasm.GetHttpRequestHeader(name)
	return v, err == nil
}

// headerIter walks the SDK's decoded pairs.
type headerIter struct{ pairs [][2]string }

// readHeaders returns an iterator over the pairs of a header map.
func readHeaders(m headerMap) (headerIter, error) {
	get := proxywasm.GetHttpRequestHeaders
	if m == responseHeaders {
		get = proxywasm.GetHttpResponseHeaders
	}
	pairs, err := get()
	return headerIter{pairs}, err
}

// next returns the next pair; ok is false after the last.
func (it *headerIter) next() (name, value string, ok bool) {
	if len(it.pairs) == 0 {
		return "", "", false
	}
	kv := it.pairs[0]
	it.pairs = it.pairs[1:]
	return kv[0], kv[1], true
}
