package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
)

// TestCNICacheCorrupt: libcni's result cache (STATE/cni/cache/results,
// one file per pod and network, written in place, so a crash or a full
// disk can leave it torn) is corrupted while the agent is down: for a pod
// the next commit deletes, its entries are cut in half; for one it
// replaces, emptied; for one it keeps, overwritten with garbage; for
// another it keeps, deleted. The restarted agent refuses the unreadable
// entries with a message naming them and rebuilds the running pods'
// entries from the host (the IP lease, the namespace's interface): the
// pods it keeps run on, untouched, with the same addresses. The deleted
// and replaced pods' DELs still release their IP leases, namespaces and
// rules. Nothing leaks, and status shows every pod's address.
func TestCNICacheCorrupt(t *testing.T) {
	parallel(t)
	addr := testenv.ContainerdAddress(t)
	r := newRig(t, addr)

	v1 := site{"gone": "1", "changed": "1", "garbled": "1", "lost": "1", "intact": "1"}
	c1 := r.push("v1", r.files(v1))
	r.start(r.bare, "--interval", "1h")
	s := r.waitConverged("v1 running", 2*time.Minute, c1, v1)
	ips := podIPs(s)
	pids := r.taskPIDs()
	r.kill()

	results := filepath.Join(r.hc.StateDir, "cni", "cache", "results")
	entry := func(pod, network, ifName string) string {
		return filepath.Join(results, network+"-"+nethost.StateName(r.ns, pod)+"-"+ifName)
	}
	corrupt := func(path string, how func([]byte) []byte) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("the cache entry to corrupt: %v", err)
		}
		if err := os.WriteFile(path, how(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	half := func(b []byte) []byte { return b[:len(b)/2] }
	corrupt(entry("gone", "kelpie", "eth0"), half)
	corrupt(entry("gone", "kelpie-loopback", "lo"), half)
	corrupt(entry("changed", "kelpie", "eth0"), func([]byte) []byte { return nil })
	corrupt(entry("garbled", "kelpie", "eth0"), func(b []byte) []byte { return []byte(strings.Repeat("\x00\xff garbage ", len(b)/10)) })
	if err := os.Remove(entry("lost", "kelpie", "eth0")); err != nil {
		t.Fatal(err)
	}
	t.Logf("corrupted the cache entries of gone (cut in half), changed (emptied), garbled (garbage); deleted lost's")

	v2 := site{"changed": "2", "garbled": "1", "lost": "1", "intact": "1", "new": "1"}
	c2 := r.push("v2", r.files(v2))
	r.start(r.bare, "--interval", "1h")
	s = r.waitConverged("v2 despite the corrupted cache", 2*time.Minute, c2, v2)
	after := podIPs(s)
	t.Logf("addresses before %v, after %v", ips, after)
	pidsAfter := r.taskPIDs()
	for _, pod := range []string{"garbled", "intact"} {
		id := nethost.StateName(r.ns, pod) + "_main"
		if pidsAfter[id] != pids[id] {
			t.Errorf("pod %s (cache entry %s): task pid %d before, %d after: restarted, not kept", pod, map[string]string{"garbled": "garbage", "intact": "intact"}[pod], pids[id], pidsAfter[id])
		}
		if after[pod] != ips[pod] {
			t.Errorf("pod %s: address %s before, %s after", pod, ips[pod], after[pod])
		}
	}
	log := r.log()
	for _, pod := range []string{"garbled"} {
		if name := filepath.Base(entry(pod, "kelpie", "eth0")); !strings.Contains(log, name) {
			t.Errorf("the agent's log does not name the unreadable cache entry %s", name)
		}
	}
	for _, pod := range []string{"changed", "garbled", "lost", "intact", "new"} {
		if _, err := os.Stat(entry(pod, "kelpie", "eth0")); err != nil {
			t.Errorf("pod %s has no readable cache entry after the sync: %v", pod, err)
		}
	}
	r.stop()
	// The host's cleanup deletes every pod: their DELs must free the
	// rebuilt entries' leases too (checked by the host's cleanup).
}

// podIPs maps each pod of a status to its address.
func podIPs(s agentStatus) map[string]string {
	out := map[string]string{}
	for _, p := range s.Pods {
		out[p.Name] = p.IP
	}
	return out
}
