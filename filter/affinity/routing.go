package affinity

import (
	"encoding/base64"
	"errors"
)

// The routing header is the one Envoy's envoy.http.stateful_session.header session state reads. Its value is the
// upstream host's address ("1.2.3.4:80", "[::1]:8080") in standard base64 with padding, the API docs' example
// being `session-header: "MS4yLjMuNDo4MA=="`. Envoy writes it with Envoy::Base64::encode (absl::Base64Escape:
// standard alphabet, padded) in source/extensions/http/stateful_session/header/header.cc, and reads it with
// Envoy::Base64::decode (source/common/common/base64.cc), which returns an empty string, i.e. no session, for
// any input whose length is not a multiple of 4 or that holds a character outside the alphabet. So only the
// padded standard form is emitted, and only that form is accepted.
var routingEncoding = base64.StdEncoding.Strict()

// EncodeRoutingValue returns the routing-header value that pins a request to addr ("ip:port").
func EncodeRoutingValue(addr string) string {
	return routingEncoding.EncodeToString([]byte(addr))
}

// DecodeRoutingValue returns the address in a routing-header value. Like Envoy, it rejects what is not padded
// standard base64 and an empty address; it does not check the address's syntax, since the only use of it is a
// lookup among the known upstream hosts.
func DecodeRoutingValue(v string) (string, error) {
	b, err := routingEncoding.DecodeString(v)
	// The decoder skips '\r' and '\n', which Envoy's does not.
	if err != nil || routingEncoding.EncodedLen(len(b)) != len(v) {
		return "", errors.New("affinity: routing value: not padded standard base64")
	}
	if len(b) == 0 {
		return "", errors.New("affinity: routing value: empty address")
	}
	return string(b), nil
}
