package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startWith creates the harness's agent, lets prepare adjust it, and runs
// it until the test ends.
func (h *harness) startWith(prepare func(a *Agent)) {
	h.t.Helper()
	a, err := New(h.cfg, Deps{Source: h.src, Runtime: h.rt, Events: h.events})
	if err != nil {
		h.t.Fatal(err)
	}
	prepare(a)
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// syncNow triggers a sync and waits for it to end.
func (h *harness) syncNow(reason string) Status {
	h.t.Helper()
	seq := h.seq()
	h.agent.Trigger(reason)
	return h.waitSync(seq)
}

// TestHistoryRecordsSyncs: a sync that applies, one refused and one that
// fails are recorded with their commit, outcome and actions, and served
// newest first by /api/v1/history.
func TestHistoryRecordsSyncs(t *testing.T) {
	h := newHarness(t)
	h.cfg.RetryMin, h.cfg.RetryMax = time.Hour, time.Hour // no retry happens in this test
	v1 := h.src.push("v1: two webs", map[string]string{"app.yaml": deployment("web", 2, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })

	bad := h.src.push("broken", map[string]string{"app.yaml": brokenManifest})
	if s := h.syncNow("test-refused"); s.LastSync.Result != resultRefused {
		t.Fatalf("broken head: %+v", s.LastSync)
	}
	h.rt.FailOn("CreatePod", 3, errors.New("image not found"))
	v3 := h.src.push("v3: add db", map[string]string{"app.yaml": deployment("web", 2, "busybox"), "db.yaml": deployment("db", 1, "busybox")})
	if s := h.syncNow("test-failed"); s.LastSync.Result != resultFailed {
		t.Fatalf("failing head: %+v", s.LastSync)
	}

	got := h.agent.History(0)
	if len(got) != 3 {
		t.Fatalf("history has %d entries, want 3: %+v", len(got), got)
	}
	failed, refused, ok := got[0], got[1], got[2]
	if ok.Trigger != "start" || ok.Result != resultOK || ok.Commit != v1.Hash || ok.Subject != "v1: two webs" || len(ok.Actions) != 2 || ok.Time.IsZero() || ok.Error != "" {
		t.Errorf("ok entry: %+v", ok)
	}
	if !strings.Contains(strings.Join(ok.Actions, "\n"), "web-0") {
		t.Errorf("ok entry's actions do not name web-0: %q", ok.Actions)
	}
	if refused.Trigger != "test-refused" || refused.Result != resultRefused || refused.Commit != bad.Hash || refused.Kind != KindInvalid || !strings.Contains(refused.Error, "app.yaml:7") || len(refused.Actions) != 0 {
		t.Errorf("refused entry: %+v", refused)
	}
	if failed.Trigger != "test-failed" || failed.Result != resultFailed || failed.Commit != v3.Hash || failed.Kind != KindApply || len(failed.Actions) != 1 || !strings.HasSuffix(failed.Actions[0], " (failed)") {
		t.Errorf("failed entry: %+v", failed)
	}

	rec := httptest.NewRecorder()
	h.agent.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/api/v1/history?limit=2", nil))
	var served []HistoryEntry
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &served) != nil || len(served) != 2 || served[0].Commit != v3.Hash || served[1].Commit != bad.Hash {
		t.Fatalf("GET /api/v1/history?limit=2: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.agent.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/api/v1/history?limit=x", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("limit=x: %d, want 400", rec.Code)
	}
	fi, err := os.Stat(h.cfg.HistoryPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("history file: %v, %v", fi, err)
	}
}

// TestHistoryBoundedAndKept: the history keeps its limit across many
// syncs, its file never holds more than twice as many lines, and a
// restarted agent serves the same entries.
func TestHistoryBoundedAndKept(t *testing.T) {
	h := newHarness(t)
	h.cfg.HistoryLimit = 5
	h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.start()
	h.waitSync(0)
	h.syncNow("quiet") // nothing new, nothing done: not recorded
	if got := h.agent.History(0); len(got) != 1 || got[0].Trigger != "start" {
		t.Fatalf("a quiet sync was recorded: %+v", got)
	}
	for i := range 17 {
		h.src.push(fmt.Sprintf("v%d", i+2), map[string]string{"app.yaml": deployment("web", 1+i%2, "busybox")})
		h.syncNow(fmt.Sprintf("t%d", i))
		if n := countLines(t, h.cfg.HistoryPath()); n > 10 {
			t.Fatalf("after sync %d the history file has %d lines, want at most 10", i, n)
		}
	}
	got := h.agent.History(0)
	if len(got) != 5 || got[0].Trigger != "t16" || got[4].Trigger != "t12" {
		t.Fatalf("history: %+v", got)
	}
	h.stop()

	a, err := New(h.cfg, Deps{Source: h.src, Runtime: h.rt})
	if err != nil {
		t.Fatal(err)
	}
	again := a.History(0)
	if len(again) != 5 || again[0].Trigger != "t16" || again[4].Trigger != "t12" {
		t.Fatalf("history after a restart: %+v", again)
	}
	if got := a.History(2); len(got) != 2 || got[1].Trigger != "t15" {
		t.Fatalf("History(2): %+v", got)
	}
}

// TestHistoryTornLine: a last line torn by a crash is skipped, not fatal,
// and the next entry starts on a line of its own.
func TestHistoryTornLine(t *testing.T) {
	h := newHarness(t)
	path := h.cfg.HistoryPath()
	if err := os.MkdirAll(strings.TrimSuffix(path, "/history.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	good := `{"time":"2026-12-01T10:00:00Z","trigger":"poll","result":"ok","seconds":0.1}` + "\n"
	if err := os.WriteFile(path, []byte(good+good+`{"time":"2026-12-01T10:0`), 0o600); err != nil {
		t.Fatal(err)
	}
	h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.start()
	h.waitSync(0)
	got := h.agent.History(0)
	if len(got) != 3 || got[0].Trigger != "start" || got[1].Trigger != "poll" {
		t.Fatalf("history: %+v", got)
	}
	hist, err := openHistory(path, 10)
	if err != nil || len(hist.entries) != 3 || hist.lines != 3 {
		t.Fatalf("the file after the torn line: %v, %+v", err, hist)
	}
}

// TestHistoryAfterFailedAppend: an append that fails (a full disk) may
// leave part of its line; the next entry rewrites the file from memory
// rather than being glued to it, so no entry is lost and every line parses.
func TestHistoryAfterFailedAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	hist, err := openHistory(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := hist.add(HistoryEntry{Time: at, Trigger: "poll", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	// The append fails: the path is, for a moment, a directory.
	if err := os.Rename(path, path+".saved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := hist.add(HistoryEntry{Time: at.Add(time.Second), Trigger: "poll", Result: "failed"}); err == nil {
		t.Fatal("append to a directory succeeded")
	}
	// As a full disk would: the file is back with part of the line.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".saved", path); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"time":"2026-12-01T10:00:01Z","trig`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := hist.add(HistoryEntry{Time: at.Add(2 * time.Second), Trigger: "retry", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, l := range lines {
		var e HistoryEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Errorf("line %d is torn: %v: %s", i+1, err, l)
		}
	}
	if len(lines) != 3 {
		t.Errorf("the file holds %d lines, want the 3 entries:\n%s", len(lines), b)
	}
}

// countLines counts the lines of the file at path.
func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}
