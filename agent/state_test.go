package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestStateRoundTrip: what SaveState writes LoadState reads back; the
// write leaves no temporary file; a missing file is a fresh state and a
// damaged one an error naming the file.
func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent", "state.json")

	fresh, err := LoadState(path)
	if err != nil || fresh.Applied != nil || fresh.Version != stateVersion {
		t.Fatalf("missing file: %+v, %v", fresh, err)
	}

	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	commit := CommitInfo{Hash: strings.Repeat("ab", 20), Subject: "scale web", Author: "A <a@example.com>", When: at.Add(-time.Hour)}
	bad := CommitInfo{Hash: strings.Repeat("cd", 20), Subject: "broken"}
	e := &SyncError{Kind: KindInvalid, Commit: bad.Hash, Message: "app.yaml:7:13: spec.replicas: expected integer", Time: at,
		Errors: []ManifestError{{File: "app.yaml", Line: 7, Column: 13, Field: "spec.replicas", Message: "expected integer"}}}
	want := State{
		Version:   stateVersion,
		Applied:   &AppliedCommit{CommitInfo: commit, AppliedAt: at},
		Pending:   &PendingCommit{CommitInfo: bad, Reason: KindInvalid, Since: at, Error: e},
		LastError: e,
	}
	if err := SaveState(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if e.Errors[0].String() != "app.yaml:7:13: spec.replicas: expected integer" {
		t.Errorf("ManifestError.String() = %q", e.Errors[0].String())
	}

	// Overwrite: still one file, no temporary left.
	want.Pending, want.LastError = nil, nil
	if err := SaveState(path, want); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 || entries[0].Name() != "state.json" {
		t.Fatalf("state dir holds %v, %v", entries, err)
	}
	if got, err := LoadState(path); err != nil || got.Pending != nil || got.Applied.Hash != commit.Hash {
		t.Fatalf("after overwrite: %+v, %v", got, err)
	}

	for name, text := range map[string]string{"torn": `{"version": 1, "applied": {"com`, "future": `{"version": 99}`} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadState(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s state file: err %v, want one naming %s", name, err, path)
		}
	}
}

// TestCorruptStateSetAside: a state file torn or damaged (here: cut in
// half) does not keep the agent down. It is set aside for a post-mortem,
// the agent starts afresh and says so, the first sync rebuilds the state,
// and the pods that run are kept: nothing is restarted.
func TestCorruptStateSetAside(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 2, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	h.stop()
	calls := len(h.rt.Calls())
	path := h.cfg.StatePath()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}

	h.start()
	s := h.waitFor("v1 applied again", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	var note string
	for _, n := range s.Notices {
		if strings.Contains(n, "did not parse") {
			note = n
		}
	}
	if note == "" {
		t.Errorf("status does not say the state was set aside: %q", s.Notices)
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("set-aside files %v, want one", aside)
	}
	if b, err := os.ReadFile(aside[0]); err != nil || string(b) != string(good[:len(good)/2]) {
		t.Errorf("the set-aside file does not hold the corrupt state (%v)", err)
	}
	if !strings.Contains(note, aside[0]) {
		t.Errorf("the notice %q does not name %s", note, aside[0])
	}
	if m := h.mutations(calls); len(m) != 0 {
		t.Errorf("starting afresh changed the host: %v", m)
	}
	h.stop()
	if _, err := LoadState(path); err != nil {
		t.Errorf("the rebuilt state does not load: %v", err)
	}

	// A state of another version is not damage: it is refused, not set aside.
	if err := os.WriteFile(path, []byte(`{"version": 99}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(h.cfg, Deps{Source: h.src, Runtime: h.rt}); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("New with a state of version 99: %v, want a refusal naming the version", err)
	}
}
