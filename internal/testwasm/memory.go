package testwasm

import "fmt"

// LeakBytesPerStream is the per-stream leak above which the memory gates fail. Anything a stream could leave behind
// in the guest (a context map entry, a header string and its bytes, a slice) costs more than this.
const LeakBytesPerStream = 16

// CheckGuestMemoryFlat reports an error when a guest's linear memory grew by more than it may after its warm-up.
//
// A Go guest's heap keeps settling for a while: the runtime grows linear memory in steps of a few pages when its
// pacer asks, and a step can still come after any warm-up of fixed length. Demanding equal sizes therefore fails
// now and then on a healthy guest. What a gate must catch is a leak, which grows with the number of streams: the
// growth allowed is what a leak of LeakBytesPerStream would add over the streams after the warm-up, so any larger
// leak fails, while an allocator step per instance passes (256 KiB each, against 640,000 B for the smallest gate).
func CheckGuestMemoryFlat(warm, end int64, streamsAfterWarmUp int) error {
	allowed := int64(streamsAfterWarmUp) * LeakBytesPerStream
	if grew := end - warm; grew > allowed {
		return fmt.Errorf("guest memory grew by %d B over %d streams after the warm-up (%d B to %d B): more than %d B, a leak of over %d B per stream",
			grew, streamsAfterWarmUp, warm, end, allowed, LeakBytesPerStream)
	}
	return nil
}
