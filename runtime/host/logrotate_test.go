package host

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRotateLogs: a container writing numbered lines without pause has its
// log rotated under it: MaxFiles files are kept, the shim goes on writing
// at the start of the truncated file (no hole of NUL bytes where the old
// end was), and Logs reads the rotated files and the current one in order.
func TestRotateLogs(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("chatty", `i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "line $i"; done; sleep 3600`)
	p.HostNetwork = true
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	r := LogRotation{MaxBytes: 16 << 10, MaxFiles: 3}
	path := tr.logPath(p.Namespace, p.Name, "main")
	rotations := 0
	deadline := time.Now().Add(2 * time.Minute)
	for rotations < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rotations in 2 minutes", rotations)
		}
		n, err := tr.RotateLogs(r)
		if err != nil {
			t.Fatalf("RotateLogs: %v", err)
		}
		rotations += n
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists (%v): MaxFiles 3 keeps the current file, .1 and .2", path, err)
	}
	for _, name := range []string{path + ".1", path + ".2"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("rotated file: %v", err)
		}
		if len(b) == 0 || bytes.IndexByte(b, 0) >= 0 {
			t.Errorf("%s: %d bytes, NUL at %d", name, len(b), bytes.IndexByte(b, 0))
		}
	}
	// The writer goes on into the truncated file, from its start.
	time.Sleep(200 * time.Millisecond)
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexByte(cur, 0); i >= 0 {
		t.Fatalf("the current log has a NUL byte at %d of %d: the shim wrote past a hole, not at the new end", i, len(cur))
	}
	// Logs: the rotated files oldest first, then the current one; the
	// numbers rise throughout (lines lost between a copy and its
	// truncation leave gaps, never a step back).
	var out bytes.Buffer
	if err := tr.Logs(ctx, p.Namespace, p.Name, "main", false, &out); err != nil {
		t.Fatal(err)
	}
	last, lines := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		n, err := strconv.Atoi(strings.TrimPrefix(line, "line "))
		if err != nil {
			continue // a line cut by a truncation
		}
		if n <= last {
			t.Fatalf("line %d after line %d: Logs did not read the files in order", n, last)
		}
		last, lines = n, lines+1
	}
	if lines < 100 {
		t.Errorf("Logs gave %d numbered lines", lines)
	}
	t.Logf("%d rotations; Logs read %d lines, the last %d", rotations, lines, last)
	if _, err := tr.RotateLogs(LogRotation{MaxBytes: 10, MaxFiles: 3}); err == nil {
		t.Error("RotateLogs with a 10-byte bound: no error")
	}
}
