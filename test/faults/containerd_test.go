package faults

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// outage is how long containerd stays down in TestContainerdRestart;
// KELPIE_FAULTS_LONG makes it a minute.
func outage() time.Duration {
	if os.Getenv("KELPIE_FAULTS_LONG") != "" {
		return time.Minute
	}
	return 20 * time.Second
}

// privateContainerd starts a containerd of the test's own with
// scripts/containerd.sh (its own root, state dir and socket under a
// temporary KELPIE_CI_DIR) and returns its socket and a function that runs
// the script's start, stop or status against it. It is stopped when the
// test ends, after everything registered later (the host's cleanup) ran.
func privateContainerd(t *testing.T) (sock string, script func(cmd string) error) {
	t.Helper()
	testenv.Root(t)
	testenv.Binary(t, "containerd", "containerd")
	testenv.Binary(t, "runc", "runc")
	path, err := filepath.Abs(filepath.Join("..", "..", "scripts", "containerd.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kflt") // short: a unix socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	script = func(cmd string) error {
		c := exec.Command("bash", path, cmd)
		c.Env = append(env(), "KELPIE_CI_DIR="+dir)
		out, err := c.CombinedOutput()
		t.Logf("containerd.sh %s: %s", cmd, strings.TrimSpace(string(out)))
		return err
	}
	t.Cleanup(func() {
		if err := script("stop"); err != nil {
			t.Errorf("stop the private containerd: %v", err)
		}
		if !t.Failed() {
			// Its root holds read-only snapshot files and maybe mounts:
			// only an empty tree of a passing test is removed.
			_ = exec.Command("rm", "-rf", "--one-file-system", dir).Run()
		} else {
			t.Logf("private containerd dir kept: %s", dir)
		}
	})
	if err := script("start"); err != nil {
		t.Fatalf("start a private containerd: %v", err)
	}
	return filepath.Join(dir, "containerd", "containerd.sock"), script
}

// TestContainerdRestart: containerd stops under a running agent (its
// socket gone) for 20 s and comes back. The agent says what fails while
// it is down, keeps running, and once containerd is back it adopts the
// containers that kept running under their shims (the same tasks, none
// made twice), converges a commit pushed during the outage, and the error
// clears.
func TestContainerdRestart(t *testing.T) {
	parallel(t)
	testenv.ContainerdAddress(t) // the suite runs where containerd is available
	sock, script := privateContainerd(t)
	r := newRig(t, sock)

	v1 := site{"a": "1", "b": "1", "c": "1"}
	c1 := r.push("v1", r.files(v1))
	r.start(r.bare, "--interval", "1h")
	r.waitConverged("v1 running", 2*time.Minute, c1, v1)
	pids := r.taskPIDs()

	if err := script("stop"); err != nil {
		t.Fatalf("stop containerd: %v", err)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Fatalf("the socket %s is still there after stop", sock)
	}
	down := time.Now()
	// A push during the outage: the sync that follows cannot observe.
	v2 := site{"a": "1", "b": "1", "c": "1", "d": "1"}
	c2 := r.push("v2", r.files(v2))
	s := r.waitFor("an error while containerd is down", outage(), func(s agent.Status) bool {
		return s.LastError != nil
	})
	t.Logf("%v into the outage status says %s: %s", time.Since(down).Round(time.Millisecond), s.LastError.Kind, s.LastError.Message)
	if s.LastError.Kind != agent.KindObserve && s.LastError.Kind != agent.KindApply {
		t.Errorf("while containerd is down: error kind %s, want observe or apply", s.LastError.Kind)
	}
	if !strings.Contains(s.LastError.Message, "containerd") && !strings.Contains(s.LastError.Message, sock) {
		t.Errorf("while containerd is down: error %q does not name containerd or its socket", s.LastError.Message)
	}
	if s.Applied == nil || s.Applied.Hash != c1 {
		t.Errorf("while containerd is down: applied %v, want %.12s", s.Applied, c1)
	}
	if rest := outage() - time.Since(down); rest > 0 {
		time.Sleep(rest) // the outage itself: containerd stays down this long
	}
	if _, err := r.status(); err != nil {
		t.Fatalf("the agent does not answer after %v without containerd: %v\n%s", outage(), err, r.log())
	}

	if err := script("start"); err != nil {
		t.Fatalf("restart containerd: %v", err)
	}
	up := time.Now()
	s = r.waitConverged("v2 after containerd came back", 2*time.Minute, c2, v2)
	t.Logf("converged %v after containerd came back (last sync %s)", time.Since(up).Round(time.Millisecond), s.LastSync.Reason)
	after := r.taskPIDs()
	for id, pid := range pids {
		if after[id] != pid {
			t.Errorf("container %s: task pid %d before the outage, %d after: restarted, not adopted", id, pid, after[id])
		}
	}
	r.stop()
}
