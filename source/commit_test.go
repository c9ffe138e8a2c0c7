package source

import "testing"

func TestSubject(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"one line\n", "one line"},
		{"no newline", "no newline"},
		{"title\n\nbody\nmore body\n", "title"},
		{"wrapped\ntitle\n\nbody", "wrapped title"},
		{"\n\n  leading blank lines\n", "leading blank lines"},
		{"crlf\r\n\r\nbody\r\n", "crlf"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := subject(tt.msg); got != tt.want {
			t.Errorf("subject(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

func TestCommitString(t *testing.T) {
	c := Commit{Hash: "0123456789abcdef0123456789abcdef01234567", Short: "0123456789ab", Subject: "fix it"}
	if got, want := c.String(), "0123456789ab fix it"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
