package deploy

import (
	"strings"
	"testing"
)

func TestJSONPathAt(t *testing.T) {
	js := `{"a":{"b":[1,{"c":"x","d":[true,false]}],"e":"FAIL"},"f":2}`
	tests := []struct {
		at   string // the text whose first byte is the offset
		want string
	}{
		{`"a"`, "a"},
		{`"b"`, "a.b"},
		{`1,`, "a.b[0]"},
		{`"c"`, "a.b[1].c"},
		{`"x"`, "a.b[1].c"},
		{`false`, "a.b[1].d[1]"},
		{`"FAIL"`, "a.e"},
		{`"f"`, "f"},
	}
	for _, tt := range tests {
		off := strings.Index(js, tt.at)
		if off < 0 {
			t.Fatalf("%q not in the document", tt.at)
		}
		if got := jsonPathAt([]byte(js), int64(off)); got != tt.want {
			t.Errorf("at %q (offset %d): %q, want %q", tt.at, off, got, tt.want)
		}
	}
}

func TestHostMatches(t *testing.T) {
	tests := []struct {
		pattern, host, ns string
		want              bool
	}{
		{"chat.example.com", "chat.example.com", "chat", true},
		{"chat.example.com", "chat.example.org", "chat", false},
		{"*.example.com", "chat.example.com", "chat", true},
		{"*.example.com", "example.com", "chat", false},
		{"*", "anything.test", "chat", true},
		{"chat/chat.example.com", "chat.example.com", "chat", true},
		{"chat/chat.example.com", "chat.example.com", "other", false},
		{"*/chat.example.com", "chat.example.com", "other", true},
	}
	for _, tt := range tests {
		if got := hostMatches(tt.pattern, tt.host, tt.ns); got != tt.want {
			t.Errorf("hostMatches(%q, %q, %q) = %v", tt.pattern, tt.host, tt.ns, got)
		}
	}
}
