package main

// Header reads go straight to the host functions on wasip1 (headers_wasip1.go): the SDK's reads cost the guest an
// allocation for each escaping out-parameter, and GetHttpResponseHeaders decodes the whole map into a new slice of
// pairs to find the few headers the filter looks at. Natively, where tests drive the glue through the SDK's
// emulator, they go through the SDK (headers_other.go). Either way the strings returned alias memory the host
// filled for this call: they are valid for the rest of the callback and must not be kept beyond it.

// headerMap names a header map of the proxy-wasm ABI.
type headerMap int32

const (
	requestHeaders  headerMap = 0
	responseHeaders headerMap = 2
)

// A headerIter (one type per build) walks a header map's pairs in order, repeated names included:
//
//	for name, value, ok := it.next(); ok; name, value, ok = it.next() { … }
//
// It is a plain value rather than an iter.Seq2, whose loop body, a closure, would move every variable it touches to
// the heap; a copy walks the map again from where the original stood.
