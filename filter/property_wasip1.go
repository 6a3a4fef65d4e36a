//go:build wasip1

package main

import (
	"strings"
	"unsafe"
)

//go:wasmimport env proxy_get_property
//go:noescape
func proxyGetProperty(pathData *byte, pathSize int32, returnData unsafe.Pointer, returnSize *int32) uint32

// upstreamAddressKey is upstreamAddressPath serialised as the ABI wants it (elements separated by NUL), once: the
// SDK's GetProperty serialises the path and moves its out-parameters to the heap on every call, three allocations
// on a path every response with affinity takes.
var upstreamAddressKey = strings.Join(upstreamAddressPath, "\x00")

// upstreamAddress returns the "ip:port" of the upstream host serving the stream, "" when the property is missing
// (a local reply: no upstream was chosen).
func upstreamAddress() string {
	var data *byte
	var size int32
	if proxyGetProperty(unsafe.StringData(upstreamAddressKey), int32(len(upstreamAddressKey)), unsafe.Pointer(&data), &size) != statusOK || data == nil {
		return ""
	}
	return unsafe.String(data, size)
}
