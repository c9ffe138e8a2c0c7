package faults

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// stateDirSize is the size of the tmpfs TestStateDirFull puts the state
// dir on: room for the git cache and a few pods' records.
const stateDirSize = "16m"

// fill writes zeros to path until the file system is full and returns how
// much it wrote.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n
		}
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
	}
}

// TestStateDirFull: the state dir is a small tmpfs, and it fills up (a
// filler file takes every byte left). A push then needs room (git objects,
// sandbox records, IP leases): the sync fails with an error that says the
// disk is full, status shows it, the running pods stay as they are,
// state.json still parses and no temporary file is left. Once the filler
// is removed the push converges and the error clears.
func TestStateDirFull(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "mount", "mount")
	r := newRig(t, addr)
	if out, err := runCmd("mount", "-t", "tmpfs", "-o", "size="+stateDirSize+",mode=0700", "kelpie-faults", r.hc.StateDir); err != nil {
		t.Fatalf("mount a tmpfs on the state dir: %v: %s", err, out)
	}
	// Registered after the host's cleanup, so run before it: empty the
	// host while the tmpfs holds its state, then unmount.
	t.Cleanup(func() {
		r.destroy()
		if out, err := runCmd("umount", r.hc.StateDir); err != nil {
			t.Errorf("umount %s: %v: %s", r.hc.StateDir, err, out)
		}
	})

	v1 := site{"a": "1", "b": "1"}
	c1 := r.push("v1", r.files(v1))
	r.start(r.bare, "--interval", "1h")
	r.waitConverged("v1 running", 2*time.Minute, c1, v1)
	pids := r.taskPIDs()

	filler := filepath.Join(r.hc.StateDir, "filler")
	n := fill(t, filler)
	t.Logf("filler: %d MiB, the state dir's file system is full", n>>20)

	// Replace a pod, add one, with a new file in the repository.
	v2 := site{"a": "2", "b": "1", "c": "1"}
	files := r.files(v2)
	files["notes.txt"] = strings.Repeat("a new blob for the git cache\n", 2000)
	c2 := r.push("v2", files)
	s := r.waitFor("an error naming the full disk", time.Minute, func(s agentStatus) bool {
		return s.LastError != nil && strings.Contains(s.LastError.Message, "no space left on device")
	})
	t.Logf("with the state dir full status says %s: %s", s.LastError.Kind, s.LastError.Message)
	if s.Applied == nil || s.Applied.Hash != c1 {
		t.Errorf("with the state dir full: applied %v, want %.12s", s.Applied, c1)
	}
	checkStateFile(t, r.hc.StateDir)
	if after := r.taskPIDs(); !sameMap(pids, after) {
		t.Errorf("the full disk changed the host's tasks: before %v, after %v", pids, after)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The agent retries with back-off (2 s doubling); a sync request
	// would only shorten the wait.
	r.waitConverged("v2 once there is room", 2*time.Minute, c2, v2)
	checkStateFile(t, r.hc.StateDir)
	r.stop()
}

// checkStateFile fails the test unless the agent's state.json parses as
// JSON and no temporary file of a torn write is left beside it.
func checkStateFile(t *testing.T, stateDir string) {
	t.Helper()
	path := filepath.Join(stateDir, "agent", "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("state file: %v", err)
		return
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Errorf("state file %s is torn: %v\n%s", path, err, b)
	}
	if tmp, _ := filepath.Glob(filepath.Join(stateDir, "agent", ".tmp-*")); len(tmp) > 0 {
		t.Errorf("temporary files left beside the state file: %v", tmp)
	}
}

// runCmd runs a command and returns its combined output.
func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
