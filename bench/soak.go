package bench

// SoakResult is what TestSoak measured; benchreport reads it from the file given by -soak.out.
type SoakResult struct {
	Envoy           string  `json:"envoy"`          // the host's Envoy profile: the strictest, as everywhere by default
	GuestFailures   uint64  `json:"guest_failures"` // Stats.Traps at the end
	Streams         int     `json:"streams"`
	WarmUp          int     `json:"warm_up"`
	GuestMemWarm    uint64  `json:"guest_memory_after_warm_up"`
	GuestMemEnd     uint64  `json:"guest_memory_at_end"`
	GuestMemMax     uint64  `json:"guest_memory_max"`
	HostHeapWarm    uint64  `json:"host_heap_after_warm_up"`
	HostHeapEnd     uint64  `json:"host_heap_at_end"`
	NsPerStream     float64 `json:"ns_per_stream"`
	Rewritten       int64   `json:"cookies_rewritten"`
	Seconds         float64 `json:"seconds"`
	CheckpointEvery int     `json:"checkpoint_every"`
	GuestMemSamples []int64 `json:"guest_memory_samples"`
}
