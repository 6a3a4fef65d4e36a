package bench

// V8Result is what TestV8 measured in Node's V8 (bench/v8/host.mjs); benchreport reads it from the file given by
// -v8.out.
type V8Result struct {
	Node    string   `json:"node"`
	V8      string   `json:"v8"`
	Flags   []string `json:"flags"`
	Profile string   `json:"profile"` // the proxy-wasm-cpp-host WASI profile the numbers were taken under
	// StrictTrap is the trap of a guest under the strict profile (c4d7bb0, Envoy 1.33–1.37), when the numbers had
	// to be taken under a later one; "" when every guest ran strict.
	StrictTrap string         `json:"strict_trap,omitempty"`
	Streams    int            `json:"streams"` // per round and guest
	Rounds     int            `json:"rounds"`
	Guests     []V8GuestTimes `json:"guests"`
}

// V8GuestTimes are one guest's microseconds per stream, one value per round.
type V8GuestTimes struct {
	Name         string    `json:"name"`
	USPerStream  []float64 `json:"us_per_stream"`     // wall time
	CPUPerStream []float64 `json:"cpu_us_per_stream"` // the process's CPU time
}
