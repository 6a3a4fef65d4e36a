package host

import (
	"bytes"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"unsafe"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

// Properties follow Envoy 1.33's get_property, which evaluates the path as a CEL attribute
// (source/extensions/common/wasm/context.cc and filters/common/expr/context.cc):
//
//   - the path is a list of segments separated by NUL bytes; the first names a top-level attribute;
//   - strings and bytes are returned raw, integers as 8 little-endian bytes (int64 or uint64), booleans as one byte,
//     timestamps and durations as int64 nanoseconds, maps as a serialized header map (keys unique, repeated header
//     values joined with ","), protobuf messages in their wire encoding;
//   - a whole attribute group ("request", "source", ...) cannot be listed: SerializationFailure;
//   - what a callback cannot see is NotFound: stream attributes in the root context, request header attributes
//     once the request headers are gone (any time after proxy_on_request_headers returned Continue, until the
//     access log), and so on;
//   - Envoy 1.33 dropped the old top-level node, cluster_name, route_name, ... attributes for xds.*;
//   - any other first segment names a value set with proxy_set_property on the stream.
//
// Supported: request.{path,url_path,host,scheme,method,referer,id,useragent,query,headers[.name],time,protocol,
// duration,size,total_size}, response.{code,code_details,flags,headers[.name],trailers,size,total_size},
// source.{address,port}, destination.{address,port}, upstream.{address,port}, connection.{id,mtls,
// requested_server_name,tls_version}, connection_id, metadata, filter_state.wasm.<name>, xds.{node[.id,.cluster],
// cluster_name,route_name,filter_chain_name}, plugin_name, plugin_root_id, plugin_vm_id.

// splitPath returns the first segment of a property path and the rest (nil when there is no more).
func splitPath(path []byte) (seg, rest []byte) {
	if i := bytes.IndexByte(path, 0); i >= 0 {
		return path[:i], path[i+1:]
	}
	return path, nil
}

// property evaluates a path for the running callback. The value may alias inst.scratch or host memory and must be
// copied before the next property lookup.
func (inst *instance) property(path []byte) ([]byte, abi.Status) {
	seg, rest := splitPath(path)
	st := inst.currentStream()
	o := &inst.h.opts
	switch string(seg) {
	case "plugin_name":
		return leafString(o.PluginName, rest)
	case "plugin_root_id":
		return leafString(o.RootID, rest)
	case "plugin_vm_id":
		return leafString(o.VMID, rest)
	case "xds":
		return inst.xdsProperty(st, rest)
	}
	if st == nil {
		// Everything else needs the stream's info, which the root context does not have.
		return nil, abi.StatusNotFound
	}
	switch string(seg) {
	case "connection_id":
		return inst.leafUint(st.info.ConnectionID, rest)
	case "request":
		return inst.requestProperty(st, rest)
	case "response":
		return inst.responseProperty(st, rest)
	case "source":
		return inst.peerProperty(st.info.SourceAddress, rest)
	case "destination":
		return inst.peerProperty(st.info.DestinationAddress, rest)
	case "upstream":
		return inst.upstreamProperty(st, rest)
	case "connection":
		return inst.connectionProperty(st, rest)
	case "metadata":
		// The stream's dynamic metadata, an empty google.protobuf.Struct here.
		if rest == nil {
			return nil, abi.StatusOK
		}
		field, more := splitPath(rest)
		if string(field) == "filter_metadata" && more == nil {
			return inst.emptyMap(), abi.StatusOK
		}
		return nil, abi.StatusNotFound
	case "filter_state":
		if rest == nil {
			return nil, abi.StatusSerializationFailure
		}
		key, more := splitPath(rest)
		if name, ok := bytes.CutPrefix(key, []byte("wasm.")); ok && more == nil {
			if v, ok := st.props[string(name)]; ok {
				return v, abi.StatusOK
			}
		}
		return nil, abi.StatusNotFound
	case "upstream_filter_state":
		if rest == nil {
			return nil, abi.StatusSerializationFailure
		}
		return nil, abi.StatusNotFound
	}
	if v, ok := st.props[string(seg)]; ok {
		if rest != nil {
			return nil, abi.StatusNotFound
		}
		return v, abi.StatusOK
	}
	return nil, abi.StatusNotFound
}

func leafString(s string, rest []byte) ([]byte, abi.Status) {
	if rest != nil {
		return nil, abi.StatusNotFound
	}
	// The value is only read (copied into the guest), so it may alias the string.
	return unsafe.Slice(unsafe.StringData(s), len(s)), abi.StatusOK
}

func (inst *instance) leafInt(v int64, rest []byte) ([]byte, abi.Status) {
	if rest != nil {
		return nil, abi.StatusNotFound
	}
	inst.scratch = binary.LittleEndian.AppendUint64(inst.scratch[:0], uint64(v))
	return inst.scratch, abi.StatusOK
}

func (inst *instance) leafUint(v uint64, rest []byte) ([]byte, abi.Status) {
	return inst.leafInt(int64(v), rest)
}

func leafBool(v bool, rest []byte) ([]byte, abi.Status) {
	if rest != nil {
		return nil, abi.StatusNotFound
	}
	if v {
		return []byte{1}, abi.StatusOK
	}
	return []byte{0}, abi.StatusOK
}

func (inst *instance) emptyMap() []byte {
	inst.scratch = append(inst.scratch[:0], 0, 0, 0, 0)
	return inst.scratch
}

// headerEntry is Envoy's convertHeaderEntry: the first value of a header, not found without the map or the header.
func headerEntry(m *headerMap, name string, rest []byte) ([]byte, abi.Status) {
	if m == nil {
		return nil, abi.StatusNotFound
	}
	v, ok := m.get(name)
	if !ok {
		return nil, abi.StatusNotFound
	}
	return leafString(v, rest)
}

// headersProperty serves request.headers and response.headers: the whole map with unique names in first-seen
// order (Envoy lists them in hash order) and values joined with ",", or one header's joined value.
func (inst *instance) headersProperty(m *headerMap, rest []byte) ([]byte, abi.Status) {
	if rest == nil {
		if m == nil {
			return inst.emptyMap(), abi.StatusOK
		}
		var merged [][2]string
		for i, p := range m.pairs {
			seen := false
			for _, q := range m.pairs[:i] {
				if q[0] == p[0] {
					seen = true
					break
				}
			}
			if !seen {
				v, _ := m.joined(p[0])
				merged = append(merged, [2]string{p[0], v})
			}
		}
		inst.scratch = append(inst.scratch[:0], make([]byte, pairsSize(merged))...)
		marshalPairs(inst.scratch, merged)
		return inst.scratch, abi.StatusOK
	}
	name, more := splitPath(rest)
	if m == nil {
		return nil, abi.StatusNotFound
	}
	v, ok := m.joined(lowerASCII(string(name)))
	if !ok {
		return nil, abi.StatusNotFound
	}
	return leafString(v, more)
}

func (inst *instance) requestProperty(st *streamState, rest []byte) ([]byte, abi.Status) {
	if rest == nil {
		return nil, abi.StatusSerializationFailure
	}
	field, more := splitPath(rest)
	m := st.requestHeadersForProps()
	switch string(field) {
	case "headers":
		return inst.headersProperty(m, more)
	case "path":
		return headerEntry(m, ":path", more)
	case "host":
		return headerEntry(m, ":authority", more)
	case "scheme":
		return headerEntry(m, ":scheme", more)
	case "method":
		return headerEntry(m, ":method", more)
	case "referer":
		return headerEntry(m, "referer", more)
	case "id":
		return headerEntry(m, "x-request-id", more)
	case "useragent":
		return headerEntry(m, "user-agent", more)
	case "url_path", "query":
		if m == nil {
			return nil, abi.StatusNotFound
		}
		path, _ := m.get(":path")
		before, after, hasQuery := strings.Cut(path, "?")
		if string(field) == "url_path" {
			return leafString(before, more)
		}
		if !hasQuery {
			return leafString("", more)
		}
		query, _, _ := strings.Cut(after, "#")
		return leafString(query, more)
	case "time":
		return inst.leafInt(st.start.UnixNano(), more)
	case "protocol":
		if st.info.Protocol == "" {
			return nil, abi.StatusNotFound
		}
		return leafString(st.info.Protocol, more)
	case "duration":
		// Known once the request is complete, that is in the access log.
		if !st.logPhase {
			return nil, abi.StatusNotFound
		}
		return inst.leafInt(int64(inst.h.opts.Now().Sub(st.start)), more)
	case "size":
		if m != nil {
			if cl, ok := m.get("content-length"); ok {
				n, err := strconv.ParseInt(cl, 10, 64)
				if err != nil {
					return nil, abi.StatusNotFound
				}
				return inst.leafInt(n, more)
			}
		}
		return inst.leafInt(st.reqBytes, more)
	case "total_size":
		n := st.reqBytes
		if m != nil {
			n += int64(m.byteSize())
		}
		return inst.leafInt(n, more)
	}
	return nil, abi.StatusNotFound
}

func (inst *instance) responseProperty(st *streamState, rest []byte) ([]byte, abi.Status) {
	if rest == nil {
		return nil, abi.StatusSerializationFailure
	}
	field, more := splitPath(rest)
	m := st.responseHeadersForProps()
	switch string(field) {
	case "code":
		if st.status == 0 {
			return nil, abi.StatusNotFound
		}
		return inst.leafInt(int64(st.status), more)
	case "code_details":
		if st.codeDetails == "" {
			return nil, abi.StatusNotFound
		}
		return leafString(st.codeDetails, more)
	case "flags":
		return inst.leafInt(0, more)
	case "headers":
		return inst.headersProperty(m, more)
	case "trailers":
		return inst.headersProperty(nil, more)
	case "size":
		return inst.leafInt(st.respBytes, more)
	case "total_size":
		n := st.respBytes
		if m != nil {
			n += int64(m.byteSize())
		}
		return inst.leafInt(n, more)
	}
	return nil, abi.StatusNotFound
}

// peerProperty serves source.* and destination.*: the address as given ("ip:port") and its port.
func (inst *instance) peerProperty(addr string, rest []byte) ([]byte, abi.Status) {
	if rest == nil {
		return nil, abi.StatusSerializationFailure
	}
	field, more := splitPath(rest)
	switch string(field) {
	case "address":
		if addr == "" {
			return nil, abi.StatusNotFound
		}
		return leafString(addr, more)
	case "port":
		if port, ok := portOf(addr); ok {
			return inst.leafInt(port, more)
		}
	}
	return nil, abi.StatusNotFound
}

func portOf(addr string) (int64, bool) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(p, 10, 64)
	return n, err == nil
}

func (inst *instance) upstreamProperty(st *streamState, rest []byte) ([]byte, abi.Status) {
	if rest == nil {
		return nil, abi.StatusSerializationFailure
	}
	if st.upstream == "" {
		return nil, abi.StatusNotFound
	}
	return inst.peerProperty(st.upstream, rest)
}

func (inst *instance) connectionProperty(st *streamState, rest []byte) ([]byte, abi.Status) {
	if rest == nil {
		return nil, abi.StatusSerializationFailure
	}
	field, more := splitPath(rest)
	switch string(field) {
	case "id":
		return inst.leafUint(st.info.ConnectionID, more)
	case "mtls":
		// No client certificates are requested by this host.
		return leafBool(false, more)
	case "requested_server_name":
		return leafString(st.info.ServerName, more)
	case "tls_version":
		if st.info.TLS {
			return leafString(st.info.TLSVersion, more)
		}
	}
	return nil, abi.StatusNotFound
}

// xdsProperty serves xds.*: the node is known everywhere, the rest needs a stream.
func (inst *instance) xdsProperty(st *streamState, rest []byte) ([]byte, abi.Status) {
	if rest == nil {
		return nil, abi.StatusSerializationFailure
	}
	field, more := splitPath(rest)
	o := &inst.h.opts
	switch string(field) {
	case "node":
		if more == nil {
			// envoy.config.core.v3.Node in protobuf wire format: field 1 (id) when set.
			inst.scratch = inst.scratch[:0]
			if o.NodeID != "" {
				inst.scratch = append(inst.scratch, 0x0a)
				inst.scratch = binary.AppendUvarint(inst.scratch, uint64(len(o.NodeID)))
				inst.scratch = append(inst.scratch, o.NodeID...)
			}
			return inst.scratch, abi.StatusOK
		}
		sub, deeper := splitPath(more)
		switch string(sub) {
		case "id":
			return leafString(o.NodeID, deeper)
		case "cluster":
			return leafString("", deeper)
		}
		return nil, abi.StatusNotFound
	}
	if st == nil {
		return nil, abi.StatusNotFound
	}
	switch string(field) {
	case "cluster_name":
		if o.ClusterName != "" {
			return leafString(o.ClusterName, more)
		}
	case "route_name":
		if o.RouteName != "" {
			return leafString(o.RouteName, more)
		}
	case "filter_chain_name":
		return leafString("", more)
	}
	return nil, abi.StatusNotFound
}
