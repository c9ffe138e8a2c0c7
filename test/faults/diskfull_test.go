package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
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
	parallel(t)
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "mount", "mount")
	r := newRig(t, addr)
	mountTmpfs(t, r.hc.StateDir, stateDirSize)
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

// claimWriter is the manifest of TestStateDirFullAfterFetch's claim,
// config and pod: the pod appends its ConfigMap's version to a file of its
// claim when it starts, so the file lists every version that ran.
func claimWriter(ns, version string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: %[1]s}
data:
  version: %[2]s
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: %[1]s}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer, namespace: %[1]s}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "cat /config/version >> /data/versions; echo >> /data/versions; exec sleep 3600"]
    volumeMounts:
    - {name: config, mountPath: /config}
    - {name: data, mountPath: /data}
  volumes:
  - name: config
    configMap: {name: cfg}
  - name: data
    persistentVolumeClaim: {claimName: data}
`, ns, version)
}

// TestStateDirFullAfterFetch: the state dir is a small tmpfs, but the git
// cache (STATE/agent/git) is a file system of its own, so a push is
// fetched and then the host's own writes fail: the state dir fills up
// while a pod writes into its claim, and the next commit changes the pod's
// ConfigMap (the pod is replaced: its config files are written again) and
// adds a pod (a sandbox record, a namespace, a lease). The sync fails with
// an error that says the disk is full, after the fetch of the new commit;
// status tells what runs; state.json parses and no temporary file is
// left; the claim's data is still there. Once there is room the commit
// converges, and the replaced pod finds the claim's data and adds to it.
func TestStateDirFullAfterFetch(t *testing.T) {
	parallel(t)
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "mount", "mount")
	r := newRig(t, addr)
	gitCache := filepath.Join(r.hc.StateDir, "agent", "git")
	mountTmpfs(t, r.hc.StateDir, stateDirSize)
	if err := os.MkdirAll(gitCache, 0o700); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, gitCache, "64m")
	r.hc.Mounts = []string{"agent/git"}
	filler := filepath.Join(r.hc.StateDir, "filler")
	// Registered after the host's cleanup, so run before it: empty the
	// host while the tmpfs holds its state (with room again), then unmount
	// the git cache and the state dir.
	t.Cleanup(func() {
		_ = os.Remove(filler)
		r.destroy()
		for _, dir := range []string{gitCache, r.hc.StateDir} {
			if out, err := runCmd("umount", dir); err != nil {
				t.Errorf("umount %s: %v: %s", dir, err, out)
			}
		}
	})
	claimFile := filepath.Join(r.hc.StateDir, "volumes", r.ns+"_data", "data", "versions")
	waitClaim := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, err := os.ReadFile(claimFile)
			if err == nil && string(b) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the claim's file %s holds %q (%v), want %q", what, claimFile, b, err, want)
			}
			time.Sleep(100 * time.Millisecond) // poll interval
		}
	}

	v1 := site{"a": "1", "writer": ""}
	files := r.files(site{"a": "1"})
	files["writer.yaml"] = claimWriter(r.ns, "v1")
	c1 := r.push("v1", files)
	r.start(r.bare, "--interval", "1h")
	r.waitConverged("v1 running", 2*time.Minute, c1, v1)
	waitClaim("v1 running", "v1\n")

	n := fill(t, filler)
	t.Logf("filler: %d MiB, the state dir's file system is full; the git cache's is not", n>>20)

	v2 := site{"a": "1", "writer": "", "c": "1"}
	files = r.files(site{"a": "1", "c": "1"})
	files["writer.yaml"] = claimWriter(r.ns, "v2")
	c2 := r.push("v2", files)
	s := r.waitFor("an error naming the full disk after the fetch of v2", time.Minute, func(s agentStatus) bool {
		return s.LastError != nil && strings.Contains(s.LastError.Message, "no space left on device") &&
			s.LastSync != nil && s.LastSync.Commit == c2
	})
	t.Logf("with the state dir full, after the fetch of %.12s, status says %s: %s", c2, s.LastError.Kind, s.LastError.Message)
	if s.Applied == nil || s.Applied.Hash != c1 {
		t.Errorf("with the state dir full: applied %v, want %.12s", s.Applied, c1)
	}
	checkStateFile(t, r.hc.StateDir)
	// Status tells what runs: the host holds exactly the pods it lists.
	w := nethost.Want{Pods: map[string]nethost.WantPod{}}
	var names []string
	for _, p := range s.Pods {
		w.Pods[p.Namespace+"/"+p.Name] = nethost.WantPod{Containers: []string{"main"}}
		names = append(names, p.Namespace+"/"+p.Name+" "+p.State)
	}
	t.Logf("with the state dir full the agent reports %v", names)
	if problems := r.hc.Settle(w); len(problems) > 0 {
		t.Errorf("with the state dir full the host differs from what status says (%v):\n- %s", names, strings.Join(problems, "\n- "))
	}
	// The writer may have been replaced already (its new config fitted):
	// what it wrote before is there.
	if b, err := os.ReadFile(claimFile); err != nil || !strings.HasPrefix(string(b), "v1\n") {
		t.Errorf("with the state dir full: the claim's file holds %q (%v), want v1 first", b, err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r.waitConverged("v2 once there is room", 2*time.Minute, c2, v2)
	waitClaim("v2 once there is room", "v1\nv2\n")
	checkStateFile(t, r.hc.StateDir)
	r.stop()
	checkHistoryFile(t, r.hc.StateDir)
}

// checkHistoryFile fails the test unless every line of the agent's sync
// history parses: an append the full disk cut short must not leave a torn
// line for the next one to be glued to.
func checkHistoryFile(t *testing.T, stateDir string) {
	t.Helper()
	path := filepath.Join(stateDir, "agent", "history.jsonl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("history file: %v", err)
		return
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Errorf("history file %s: line %d is torn: %v\n%s", path, i+1, err, l)
		}
	}
}

// mountTmpfs mounts a tmpfs of size on dir.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := runCmd("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "kelpie-faults", dir); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v: %s", dir, err, out)
	}
}
