package host

import (
	"bytes"
	"strings"
	"testing"
)

func TestTailWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"fewer lines than the tail", 5, []string{"a\nb\n"}, "a\nb\n"},
		{"the last three", 3, []string{"1\n2\n3\n4\n5\n"}, "3\n4\n5\n"},
		{"lines split across writes", 2, []string{"on", "e\ntw", "o\nthr", "ee\n"}, "two\nthree\n"},
		{"a last line without newline", 2, []string{"a\nb\nc"}, "b\nc"},
		{"zero", 0, []string{"a\nb\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tw := &tailWriter{max: tc.max}
			for _, w := range tc.writes {
				if n, err := tw.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			var out bytes.Buffer
			if err := tw.flush(&out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("tail %d of %q = %q, want %q", tc.max, strings.Join(tc.writes, ""), out.String(), tc.want)
			}
		})
	}
}
