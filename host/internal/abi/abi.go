// Package abi holds the numeric constants of the Proxy-Wasm ABI 0.2.1 as the host sees them.
//
// The values follow the specification (github.com/proxy-wasm/spec, abi-versions/v0.2.1) and the enums of
// proxy-wasm-cpp-host, the host library inside Envoy. They are kept apart from package host so that the host's
// implementation reads as ABI names rather than bare numbers.
package abi

// Status is proxy_status_t, the result of every host function in the "env" module.
type Status = uint32

// The statuses a host function can return.
const (
	StatusOK                   = 0
	StatusNotFound             = 1
	StatusBadArgument          = 2
	StatusSerializationFailure = 3
	StatusParseFailure         = 4
	StatusInvalidMemoryAccess  = 6
	StatusEmpty                = 7
	StatusCasMismatch          = 8
	StatusInternalFailure      = 10
	StatusUnimplemented        = 12
)

// MapType is proxy_map_type_t.
type MapType = uint32

// The header maps a plugin can address. MapTypeMax is the largest valid value: anything above it is a bad
// argument, anything at or below it that the host cannot offer at that moment is unavailable.
const (
	MapRequestHeaders           = 0
	MapRequestTrailers          = 1
	MapResponseHeaders          = 2
	MapResponseTrailers         = 3
	MapGrpcInitialMetadata      = 4
	MapGrpcTrailingMetadata     = 5
	MapHTTPCallResponseHeaders  = 6
	MapHTTPCallResponseTrailers = 7
	MapTypeMax                  = 7
)

// BufferType is proxy_buffer_type_t.
type BufferType = uint32

// The buffers a plugin can address; BufferTypeMax is the largest valid value.
const (
	BufferRequestBody          = 0
	BufferResponseBody         = 1
	BufferDownstreamData       = 2
	BufferUpstreamData         = 3
	BufferHTTPCallResponseBody = 4
	BufferGrpcReceive          = 5
	BufferVMConfiguration      = 6
	BufferPluginConfiguration  = 7
	BufferCallData             = 8
	BufferTypeMax              = 8
)

// StreamType is proxy_stream_type_t.
type StreamType = uint32

// The stream directions of proxy_continue_stream and proxy_close_stream; StreamTypeMax is the largest valid value.
const (
	StreamRequest    = 0
	StreamResponse   = 1
	StreamDownstream = 2
	StreamUpstream   = 3
	StreamTypeMax    = 3
)

// LogLevel is proxy_log_level_t. LogLevelMax is a sentinel ("off"), not a level a message can carry.
type LogLevel = uint32

// The log levels.
const (
	LogTrace    = 0
	LogDebug    = 1
	LogInfo     = 2
	LogWarn     = 3
	LogError    = 4
	LogCritical = 5
	LogLevelMax = 6
)

// MetricType is proxy_metric_type_t.
type MetricType = uint32

// The metric types; MetricTypeMax is the largest valid value.
const (
	MetricCounter   = 0
	MetricGauge     = 1
	MetricHistogram = 2
	MetricTypeMax   = 2
)

// Action is proxy_action_t, what the HTTP callbacks return.
type Action = uint32

// The actions.
const (
	ActionContinue = 0
	ActionPause    = 1
)

// Version is a Proxy-Wasm ABI version advertised by a module through an exported marker function.
type Version string

// The ABI versions Envoy recognises, with the marker export that announces each.
const (
	Version010 Version = "0.1.0"
	Version020 Version = "0.2.0"
	Version021 Version = "0.2.1"
)

// VersionMarkers maps the marker export name to the version it announces.
var VersionMarkers = map[string]Version{
	"proxy_abi_version_0_1_0": Version010,
	"proxy_abi_version_0_2_0": Version020,
	"proxy_abi_version_0_2_1": Version021,
}
