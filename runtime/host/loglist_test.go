package host

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestLogListMatchesGlob: the cached listing says what a glob of
// PODS/*/logs/*.log says as pods, logs and other files come and go, and
// reads a directory again only when its modification time changed.
func TestLogListMatchesGlob(t *testing.T) {
	pods := t.TempDir()
	old := time.Now().Add(-time.Hour)
	touch := func(path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// age sets the modification time of the dirs to at, so that their
	// listings are trusted.
	age := func(at time.Time, dirs ...string) {
		t.Helper()
		for _, d := range dirs {
			if err := os.Chtimes(d, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	var l logList
	check := func(step string) {
		t.Helper()
		want, err := filepath.Glob(filepath.Join(pods, "*", podLogsDir, "*.log"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.paths(pods)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: paths = %q, want %q (the glob)", step, got, want)
		}
	}
	check("no pods")

	webLogs := filepath.Join(pods, "default_web", podLogsDir)
	touch(filepath.Join(webLogs, "main.log"))
	touch(filepath.Join(webLogs, "main.log.1"))
	touch(filepath.Join(webLogs, "main.log.times"))
	touch(filepath.Join(webLogs, "side.log"))
	touch(filepath.Join(pods, "default_db", podLogsDir, "main.log"))
	touch(filepath.Join(pods, "default_novol", "volumes", "x"))
	touch(filepath.Join(pods, "stray-file"))
	check("two pods")

	// Just changed: read again at once, even if the time stays.
	touch(filepath.Join(webLogs, "init.log"))
	age(old, pods, webLogs, filepath.Join(pods, "default_db", podLogsDir))
	check("a log added")
	check("nothing changed")

	// Settled and unchanged: the listing is reused, not read. An entry
	// slipped in with the time put back is not seen: proof of the cache.
	hidden := filepath.Join(webLogs, "hidden.log")
	touch(hidden)
	age(old, webLogs)
	got, err := l.paths(pods)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(got, hidden) {
		t.Errorf("a settled, unchanged logs dir was read again: %q", got)
	}
	age(old.Add(time.Second), webLogs) // its time changed: read again
	check("the logs dir's time changed")

	if err := os.RemoveAll(filepath.Join(pods, "default_db")); err != nil {
		t.Fatal(err)
	}
	check("a pod removed")
	if err := os.RemoveAll(pods); err != nil {
		t.Fatal(err)
	}
	check("no pods dir")
}
