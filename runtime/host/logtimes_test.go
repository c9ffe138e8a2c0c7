package host

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// t0 is the mock clock's origin in the time index tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus seconds.
func at(seconds float64) time.Time {
	return t0.Add(time.Duration(seconds * float64(time.Second)))
}

func TestParseLogTimes(t *testing.T) {
	recs := []logTime{{0, at(1)}, {10, at(2)}, {10, at(3)}, {25, at(4)}}
	if got := parseLogTimes(formatLogTimes(recs)); !reflect.DeepEqual(got, recs) {
		t.Errorf("round trip = %v, want %v", got, recs)
	}
	// A torn last record, garbage, and records going back are skipped.
	b := append(formatLogTimes(recs[:2]), fmt.Sprintf("x y\n5 %d\n12 %d\n30 %d\n40", at(3).UnixNano(), at(1).UnixNano(), at(5).UnixNano())...)
	want := []logTime{recs[0], recs[1], {30, at(5)}}
	if got := parseLogTimes(b); !reflect.DeepEqual(got, want) {
		t.Errorf("parse = %v, want %v", got, want)
	}
}

func TestSinceOffset(t *testing.T) {
	// 12 bytes by 1s, idle until 3s, 12 more by 4s, the rest (30 in all)
	// by the last write at 4.5s.
	recs := []logTime{{12, at(1)}, {12, at(3)}, {24, at(4)}}
	tests := []struct {
		name   string
		recs   []logTime
		cutoff time.Time
		want   int64
	}{
		{"before everything", recs, at(-5), 0},
		{"at the first record", recs, at(1), 0},
		{"just after the first record", recs, at(1.1), 12},
		{"while idle", recs, at(2), 12},
		{"within the second chunk", recs, at(3.5), 12},
		{"after the last record", recs, at(4.2), 24},
		{"at the last write", recs, at(4.5), 24},
		{"after the last write", recs, at(4.6), 30},
		{"in the future", recs, at(100), 30},
		{"no index, written since", nil, at(4), 0},
		{"no index, nothing since", nil, at(5), 30},
		{"stale records beyond the size", []logTime{{12, at(1)}, {90, at(9)}}, at(3), 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sinceOffset(tt.recs, 30, at(4.5), tt.cutoff); got != tt.want {
				t.Errorf("sinceOffset = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestThinLogTimes(t *testing.T) {
	var recs []logTime
	for i := range 10 {
		recs = append(recs, logTime{int64(i), at(float64(i))})
	}
	got := thinLogTimes(recs)
	want := []logTime{recs[0], recs[2], recs[4], recs[5], recs[6], recs[7], recs[8], recs[9]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("thin = %v, want %v", got, want)
	}
}

func TestLineStart(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"\nnext\n"}, "next\n"},
		{[]string{"rest of a line\nnext\n"}, "next\n"},
		{[]string{"rest ", "of it", "\nne", "xt\n"}, "next\n"},
		{[]string{"no line end"}, ""},
	} {
		var out bytes.Buffer
		w := &lineStart{w: &out}
		for _, s := range tt.in {
			if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if out.String() != tt.want {
			t.Errorf("%q: %q, want %q", tt.in, out.String(), tt.want)
		}
	}
}

func TestSinceGate(t *testing.T) {
	now := at(0)
	var out bytes.Buffer
	g := &sinceGate{w: &out, cutoff: at(2), now: func() time.Time { return now }}
	write := func(s string) {
		if n, err := g.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	write("early\n")
	write("half a li")
	now = at(2) // the cutoff comes in the middle of a line: it is left out
	write("ne\nlate\n")
	write("later\n")
	if out.String() != "late\nlater\n" {
		t.Errorf("gate passed %q", out.String())
	}
}

// logTimesHost is a runtime with only a pods dir, and one container log in it.
type logTimesHost struct {
	c    *Containerd
	path string
	t    *testing.T
}

func newLogTimesHost(t *testing.T) *logTimesHost {
	dir := t.TempDir()
	path := filepath.Join(dir, "default_web", podLogsDir, "main.log")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	return &logTimesHost{c: &Containerd{podsDir: dir}, path: path, t: t}
}

// write appends lines to the log, its last write at when.
func (h *logTimesHost) write(when time.Time, lines ...string) {
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := f.WriteString(strings.Join(lines, "")); err != nil {
		h.t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(h.path, when, when); err != nil {
		h.t.Fatal(err)
	}
}

// sample is the agent's tick at when.
func (h *logTimesHost) sample(when time.Time) {
	if err := h.c.RecordLogTimes(when); err != nil {
		h.t.Fatalf("RecordLogTimes: %v", err)
	}
}

// since reads the log, rotated files first, from cutoff on.
func (h *logTimesHost) since(cutoff time.Time) string {
	rotated, err := rotatedFiles(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	var out bytes.Buffer
	files, err := h.c.openLogs(append(rotated, h.path), cutoff, &out)
	if err != nil {
		h.t.Fatal(err)
	}
	defer files.close()
	if err := files.copy(); err != nil {
		h.t.Fatal(err)
	}
	return out.String()
}

// pad makes a line long enough for a rotation at 1KiB to take a few.
func pad(name string) string { return name + " " + strings.Repeat(".", 300) + "\n" }

// TestLogTimesIndex writes a log, samples it as the agent does, rotates
// it and splits a run off, and reads it since various times: whole lines
// only, none twice, none newer than the cutoff left out.
func TestLogTimesIndex(t *testing.T) {
	h := newLogTimesHost(t)
	h.sample(at(0)) // no log yet
	h.write(at(0.5), pad("old1"), pad("old2"))
	h.sample(at(1))
	h.sample(at(2))
	h.sample(at(3))
	h.write(at(3.5), "new1 ", "still new1\n", pad("new2"))
	h.sample(at(4))
	h.write(at(4.5), pad("newer"))

	all := pad("old1") + pad("old2") + "new1 still new1\n" + pad("new2") + pad("newer")
	for _, tt := range []struct {
		cutoff time.Time
		want   string
	}{
		{at(-1), all},
		{at(1), all},
		{at(2), "new1 still new1\n" + pad("new2") + pad("newer")},
		{at(4.2), pad("newer")},
		{at(4.6), ""},
		{at(600), ""},
		{time.Time{}, all},
	} {
		if got := h.since(tt.cutoff); got != tt.want {
			t.Errorf("since %v: %q, want %q", tt.cutoff.Sub(t0), got, tt.want)
		}
	}

	// A rotation moves the index with the file; the new file starts its own.
	n, err := h.c.RotateLogs(LogRotation{MaxBytes: 1024, MaxFiles: 3})
	if err != nil || n != 1 {
		t.Fatalf("RotateLogs = %d, %v", n, err)
	}
	if _, err := os.Stat(h.path + ".1" + logTimesSuffix); err != nil {
		t.Errorf("the rotated file's index: %v", err)
	}
	h.sample(at(5))
	h.write(at(5.5), pad("after1"))
	h.sample(at(6))
	h.sample(at(7))
	h.write(at(7.5), pad("after2"))
	h.sample(at(8))
	if got, want := h.since(at(4.2)), pad("newer")+pad("after1")+pad("after2"); got != want {
		t.Errorf("since 4.2s across the rotation: %q, want %q", got, want)
	}
	if got, want := h.since(at(6.5)), pad("after2"); got != want {
		t.Errorf("since 6.5s after the rotation: %q, want %q", got, want)
	}

	// A restart splits the run off: .1 becomes .2, with their indexes.
	if err := h.c.splitRun(h.path); err != nil {
		t.Fatal(err)
	}
	for _, i := range []string{".1", ".2"} {
		if _, err := os.Stat(h.path + i + logTimesSuffix); err != nil {
			t.Errorf("index of %s after the split: %v", i, err)
		}
	}
	if _, err := os.Stat(h.path + logTimesSuffix); !os.IsNotExist(err) {
		t.Errorf("the new run's log has an index before it wrote: %v", err)
	}
	h.write(at(9.5), pad("run2"))
	h.sample(at(10))
	if got, want := h.since(at(6.5)), pad("after2")+pad("run2"); got != want {
		t.Errorf("since 6.5s after the split: %q, want %q", got, want)
	}
	files, ok := previousRunFiles(h.path)
	if !ok {
		t.Fatal("no previous run")
	}
	var prev bytes.Buffer
	open, err := h.c.openLogs(files, at(6.5), &prev)
	if err != nil {
		t.Fatal(err)
	}
	defer open.close()
	if err := open.copy(); err != nil || prev.String() != pad("after2") {
		t.Errorf("previous run since 6.5s: %q, %v", prev.String(), err)
	}
}

// TestLogTimesBounded: a log that grows at every sample keeps an index of
// at most logTimesMax records, still dating recent output to the sample.
func TestLogTimesBounded(t *testing.T) {
	h := newLogTimesHost(t)
	const samples = 3 * logTimesMax
	for i := range samples {
		h.write(at(float64(i)+0.5), fmt.Sprintf("line %d\n", i))
		h.sample(at(float64(i + 1)))
	}
	recs := readLogTimes(h.path)
	if len(recs) > logTimesMax || len(recs) < logTimesMax/2 {
		t.Errorf("%d records after %d samples, want at most %d", len(recs), samples, logTimesMax)
	}
	if got, want := h.since(at(samples-1.8)), fmt.Sprintf("line %d\nline %d\n", samples-2, samples-1); got != want {
		t.Errorf("since the last two samples: %q, want %q", got, want)
	}
}
