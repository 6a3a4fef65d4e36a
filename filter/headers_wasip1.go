//go:build wasip1

package main

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// The host functions, declared with //go:noescape so that their out-parameters stay on the caller's stack. The SDK
// imports the same functions; a module may import a function more than once.

//go:wasmimport env proxy_get_header_map_value
//go:noescape
func proxyGetHeaderMapValue(mapType headerMap, keyData *byte, keySize int32, returnData unsafe.Pointer, returnSize *int32) uint32

//go:wasmimport env proxy_get_header_map_pairs
//go:noescape
func proxyGetHeaderMapPairs(mapType headerMap, returnData unsafe.Pointer, returnSize *int32) uint32

// statusOK is the ABI's WasmResult for success.
const statusOK = 0

// requestHeader returns the first value of a request header, or false when it is absent.
func requestHeader(name string) (string, bool) {
	var data *byte
	var size int32
	if proxyGetHeaderMapValue(requestHeaders, unsafe.StringData(name), int32(len(name)), unsafe.Pointer(&data), &size) != statusOK {
		return "", false
	}
	if data == nil { // an empty value: the host allocates nothing for it
		return "", true
	}
	return unsafe.String(data, size), true
}

// headerIter reads a header map in place from the host's serialisation (proxy-wasm's pairs format: a count, then
// the name and value sizes of every pair, then each name and value followed by a NUL).
type headerIter struct {
	b          []byte
	left       int // pairs not yet read
	sizes, pos int // offsets of the next pair's sizes and name
}

// readHeaders returns an iterator over the pairs of a header map.
func readHeaders(m headerMap) (headerIter, error) {
	var data *byte
	var size int32
	if st := proxyGetHeaderMapPairs(m, unsafe.Pointer(&data), &size); st != statusOK {
		return headerIter{}, fmt.Errorf("proxy_get_header_map_pairs: status %d", st)
	}
	if data == nil || size < 4 {
		return headerIter{}, nil
	}
	b := unsafe.Slice(data, size)
	n := int(binary.LittleEndian.Uint32(b))
	if 4+8*n > len(b) {
		return headerIter{}, fmt.Errorf("proxy_get_header_map_pairs: %d pairs in %d bytes", n, len(b))
	}
	return headerIter{b: b, left: n, sizes: 4, pos: 4 + 8*n}, nil
}

// next returns the next pair; ok is false after the last (or at a malformed pair).
func (it *headerIter) next() (name, value string, ok bool) {
	if it.left == 0 {
		return "", "", false
	}
	b := it.b
	nameLen := int(binary.LittleEndian.Uint32(b[it.sizes:]))
	valueLen := int(binary.LittleEndian.Uint32(b[it.sizes+4:]))
	if nameLen+valueLen+2 > len(b)-it.pos {
		it.left = 0
		return "", "", false
	}
	it.left--
	it.sizes += 8
	name = unsafe.String(&b[it.pos], nameLen)
	it.pos += nameLen + 1
	if valueLen > 0 {
		value = unsafe.String(&b[it.pos], valueLen)
	}
	it.pos += valueLen + 1
	return name, value, true
}
