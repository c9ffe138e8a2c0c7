package host

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLogRuns: restarts keep each run's output apart, size rotations
// shift the record with the files, and the previous run is the files
// between the last two run ends.
func TestLogRuns(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "main.log")
	c := &Containerd{}
	c.logs.maxFiles = 5 // 4 rotated files beside the current one
	write := func(s string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	previous := func() string {
		t.Helper()
		files, ok := previousRunFiles(path)
		if !ok {
			return "<none>"
		}
		var b strings.Builder
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			b.Write(data)
		}
		return b.String()
	}
	split := func() {
		t.Helper()
		if err := c.splitRun(path); err != nil {
			t.Fatal(err)
		}
	}

	write("run 1\n")
	if got := previous(); got != "<none>" {
		t.Fatalf("before any restart: %q", got)
	}
	split()
	write("run 2a\n")
	if got := previous(); got != "run 1\n" {
		t.Fatalf("after a restart: %q", got)
	}
	// A size rotation in the second run: the record follows the files.
	if _, err := rotateLog(path, LogRotation{MaxBytes: 1, MaxFiles: 5}); err != nil {
		t.Fatal(err)
	}
	write("run 2b\n")
	if got := previous(); got != "run 1\n" {
		t.Fatalf("after a size rotation: %q", got)
	}
	split()
	write("run 3\n")
	if got := previous(); got != "run 2a\nrun 2b\n" {
		t.Fatalf("after a second restart: %q", got)
	}
	// A run that wrote nothing is a run too.
	split()
	if got := previous(); got != "run 3\n" {
		t.Fatalf("after a third restart: %q", got)
	}
	split()
	if got := previous(); got != "" {
		t.Fatalf("after a silent run: %q", got)
	}
	// The bound holds: 4 rotated files, the record within them.
	for range 3 {
		split()
	}
	names, _ := filepath.Glob(path + ".*")
	slices.Sort(names)
	want := []string{path + ".1", path + ".2", path + ".3", path + ".4", path + logRunsSuffix}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	if runs := readRuns(path); !slices.Equal(runs, []int{1, 2, 3, 4}) {
		t.Errorf("runs %v, want [1 2 3 4]", runs)
	}
}

func TestShiftRuns(t *testing.T) {
	tests := []struct {
		name  string
		runs  []int
		keep  int
		first bool
		want  []int
	}{
		{"restart with none", nil, 4, true, []int{1}},
		{"restart", []int{1, 3}, 4, true, []int{1, 2, 4}},
		{"rotation drops beyond keep", []int{2, 4}, 4, false, []int{3}},
		{"rotation of none", nil, 4, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shiftRuns(tt.runs, tt.keep, tt.first); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
