package affinity

import "testing"

func TestRoutingValueKnown(t *testing.T) {
	// The example in Envoy's header.proto: base64("1.2.3.4:80").
	if got := EncodeRoutingValue("1.2.3.4:80"); got != "MS4yLjMuNDo4MA==" {
		t.Errorf("EncodeRoutingValue = %q, want %q", got, "MS4yLjMuNDo4MA==")
	}
	if got, err := DecodeRoutingValue("MS4yLjMuNDo4MA=="); err != nil || got != "1.2.3.4:80" {
		t.Errorf("DecodeRoutingValue = %q, %v; want 1.2.3.4:80", got, err)
	}
}

func TestRoutingValueRoundTrip(t *testing.T) {
	for _, addr := range []string{
		"127.0.0.1:1", "10.0.0.7:8080", "255.255.255.255:65535",
		"[::1]:8080", "[2001:db8:85a3::8a2e:370:7334]:443", "[fe80::1%eth0]:80",
	} {
		v := EncodeRoutingValue(addr)
		got, err := DecodeRoutingValue(v)
		if err != nil || got != addr {
			t.Errorf("%q: encoded %q, decoded %q, %v", addr, v, got, err)
		}
		for _, c := range []byte(v) {
			if c == '-' || c == '_' {
				t.Errorf("%q: encoded %q uses the URL-safe alphabet", addr, v)
			}
		}
		if len(v)%4 != 0 {
			t.Errorf("%q: encoded %q is not padded", addr, v)
		}
	}
}

func TestDecodeRoutingValueRejects(t *testing.T) {
	for _, v := range []string{
		"",                   // Envoy: no session
		"MS4yLjMuNDo4MA",     // unpadded: Envoy's decode needs a multiple of 4
		"MS4yLjMuNDo4MB==",   // non-zero trailing bits
		"MS4yLjMu\nNDo4MA==", // the Go decoder would skip the newline
		"Wzo6MV06ODA4MA-_",   // URL-safe alphabet
		"MS4yLjMuNDo4MA===",  // too much padding
		"not base64 at all",
	} {
		if got, err := DecodeRoutingValue(v); err == nil {
			t.Errorf("DecodeRoutingValue(%q) = %q, want an error", v, got)
		}
	}
}

// FuzzDecodeRoutingValue checks the codec never panics and accepts only the one canonical spelling of an address.
func FuzzDecodeRoutingValue(f *testing.F) {
	for _, s := range []string{"MS4yLjMuNDo4MA==", EncodeRoutingValue("[::1]:8080"), "", "MS4y\r\nLjMuNDo4MA=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		addr, err := DecodeRoutingValue(v)
		if err != nil {
			return
		}
		if addr == "" {
			t.Fatalf("DecodeRoutingValue(%q) accepted an empty address", v)
		}
		if again := EncodeRoutingValue(addr); again != v {
			t.Fatalf("DecodeRoutingValue(%q) = %q, which encodes as %q", v, addr, again)
		}
	})
}
