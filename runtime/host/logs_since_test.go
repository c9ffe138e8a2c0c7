package host

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLogsSince: a container prints two lines, then two more about two
// seconds later; the log is sampled as the agent does, and --since a time
// between the two gives the later lines only, whole, with --tail and -f
// applied after it, and nothing for a time ahead.
func TestLogsSince(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("dated", `echo early1; echo early2; sleep 2; echo late1; sleep 1; echo late2; exec sleep 1000`)
	p.HostNetwork = true
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	path := tr.logPath(p.Namespace, p.Name, "main")
	// sampleUntil samples the log every 50ms until it holds want.
	sampleUntil := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, _ := os.ReadFile(path)
			if err := tr.RecordLogTimes(time.Now()); err != nil {
				t.Fatalf("RecordLogTimes: %v", err)
			}
			if strings.Contains(string(b), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the log holds %q after 30s, want %q", b, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	sampleUntil("early2\n")
	cutoff := time.Now() // after the sample that saw the early lines
	sampleUntil("late2\n")

	logs := func(f LogFilter, follow bool) string {
		t.Helper()
		fctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond) // ends -f: the container runs on
		defer cancel()
		var out bytes.Buffer
		if err := tr.LogsTail(fctx, p.Namespace, p.Name, "", f, follow, &out); err != nil {
			t.Fatalf("LogsTail %+v: %v", f, err)
		}
		return out.String()
	}
	for _, tt := range []struct {
		name   string
		filter LogFilter
		follow bool
		want   string
	}{
		{"all", LogFilter{Tail: -1}, false, "early1\nearly2\nlate1\nlate2\n"},
		{"since", LogFilter{Since: cutoff, Tail: -1}, false, "late1\nlate2\n"},
		{"since, then tail", LogFilter{Since: cutoff, Tail: 1}, false, "late2\n"},
		{"tail larger than since", LogFilter{Since: cutoff, Tail: 3}, false, "late1\nlate2\n"},
		{"since, followed", LogFilter{Since: cutoff, Tail: -1}, true, "late1\nlate2\n"},
		{"since ahead", LogFilter{Since: time.Now().Add(time.Hour), Tail: -1}, false, ""},
		{"since long ago", LogFilter{Since: cutoff.Add(-time.Hour), Tail: -1}, false, "early1\nearly2\nlate1\nlate2\n"},
	} {
		if got := logs(tt.filter, tt.follow); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
