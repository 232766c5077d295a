package redact

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	tok := "mF0Vq3nE4r7b1xX9kQ2pZcLw8TfYhG5sJdA6uRvN0eI"
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"verbose", "verbose"},
		{"/etc/anysync/config.json", "/etc/anysync/config.json"},
		{tok, Mark},
		{"Bearer " + tok, "Bearer " + Mark},
		{"/tmp/" + tok + ".json", "/tmp/" + Mark + ".json"},
		{"x" + tok + "y", Mark},
		{strings.Repeat("a", MinRun-1), strings.Repeat("a", MinRun-1)},
		{strings.Repeat("a", MinRun), Mark},
		{"-" + tok[:20] + " " + tok[20:], "-" + tok[:20] + " " + tok[20:]},
	} {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Text(strings.Repeat("a.", 1000)); len(got) > MaxShown+len("…") {
		t.Errorf("Text of 2000 bytes kept %d", len(got))
	}
	if got := Quote("a\"b"); got != `"a\"b"` {
		t.Errorf("Quote = %s", got)
	}
}
