package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
)

func TestTermSafe(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"scale web to 3", "scale web to 3"},
		{"naïve café ✓", "naïve café ✓"},
		{"tab\tkept", "tab\tkept"},
		{"\x1b]0;pwned\x07title", `\x1b]0;pwned\x07title`},
		{"\x1b[2J\x1b[Hclear", `\x1b[2J\x1b[Hclear`},
		{"line\rover", `line\x0dover`},
		{"two\nlines", `two\x0alines`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"del\x7f", `del\x7f`},
		{"bad \xff utf8", `bad \xff utf8`},
	} {
		if got := termSafe(c.in); got != c.want {
			t.Errorf("termSafe(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestStatusEscapesCommitText: a commit subject or author with terminal
// escapes is printed escaped by kelpie status.
func TestStatusEscapesCommitText(t *testing.T) {
	now := time.Now()
	s := agent.Status{Node: "h1", Applied: &agent.AppliedCommit{CommitInfo: agent.CommitInfo{Hash: strings.Repeat("a", 40), Subject: "fix\x1b]52;c;ZXZpbA==\x07", Author: "Eve \x1b[8m<eve@example.com>"}, AppliedAt: now},
		Notices: []string{"note \x1b[2K"}}
	var b bytes.Buffer
	printStatus(&b, colorizer{}, s, now)
	if out := b.String(); strings.ContainsRune(out, 0x1b) || strings.ContainsRune(out, 0x07) {
		t.Fatalf("status printed raw control characters:\n%q", out)
	} else if !strings.Contains(out, `fix\x1b]52;c;ZXZpbA==\x07`) {
		t.Fatalf("status does not show the escaped subject:\n%s", out)
	}
}
