package testwasm

import "testing"

func TestCheckGuestMemoryFlat(t *testing.T) {
	const step = 256 << 10 // what the Go runtime adds to linear memory at a time
	for _, c := range []struct {
		name          string
		warm, end     int64
		streams       int
		wantGrowthErr bool
	}{
		{"no growth", 17 << 20, 17 << 20, 40_000, false},
		{"one step per instance of two", 17 << 20, 17<<20 + 2*step, 40_000, false},
		{"a leak of 17 B per stream", 17 << 20, 17<<20 + 17*40_000, 40_000, true},
		{"a leak of 64 B per stream", 17 << 20, 17<<20 + 64*120_000, 120_000, true},
		{"shrunk", 17 << 20, 16 << 20, 40_000, false},
	} {
		err := CheckGuestMemoryFlat(c.warm, c.end, c.streams)
		if (err != nil) != c.wantGrowthErr {
			t.Errorf("%s: err = %v, want an error: %v", c.name, err, c.wantGrowthErr)
		}
	}
}
