package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// daemonSet is a DaemonSet manifest in namespace agenttest running image,
// with updateStrategy RollingUpdate and maxUnavailable.
func daemonSet(name, image, maxUnavailable string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: %[1]s
  namespace: agenttest
spec:
  selector:
    matchLabels: {app: %[1]s}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: %[3]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: main
        image: %[2]s
`, name, image, maxUnavailable)
}

// TestClusterDaemonSetRolloutPacedAcrossHosts: a DaemonSet on 3 hosts
// with maxUnavailable 1 is rolled out one host at a time in the whole
// cluster: the leader allows the next host's replacement only once the
// previous host's new pod runs and is ready. Each host alone would
// replace its pod at once, three down together.
func TestClusterDaemonSetRolloutPacedAcrossHosts(t *testing.T) {
	src := newFakeSource()
	src.push("v1", map[string]string{"agent.yaml": daemonSet("node-agent", "busybox:1", "1")})
	tc := newTestCluster(t, src)
	st := &gateState{release: make(chan struct{})}
	tc.runtime = func(f *reconcilertest.Fake) reconciler.Runtime { return gate{Fake: f, g: st} }
	hosts := []string{"a", "b", "c"}
	for _, name := range hosts {
		tc.start(name, 0, nil)
	}
	var want []string
	for _, h := range hosts {
		want = append(want, "node-agent-"+h)
	}
	tc.waitPodsSpread("one DaemonSet pod on each host", want, 0)
	var v1 string
	for h, n := range dsHashes(t, tc) {
		if n != len(hosts) {
			t.Fatalf("v1 pods by hash: %v", dsHashes(t, tc))
		}
		v1 = h
	}
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	src.push("v2: new image", map[string]string{"agent.yaml": daemonSet("node-agent", "busybox:2", "1")})

	deadline := time.Now().Add(90 * time.Second)
	released := 0
	for released < len(hosts) {
		st.mu.Lock()
		n := st.inFlight
		st.mu.Unlock()
		if n == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the rollout stopped after %d hosts", released)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// Give the other hosts a chance to replace their pod too, were
		// they allowed to, before letting this one through.
		time.Sleep(300 * time.Millisecond)
		st.release <- struct{}{}
		released++
	}
	st.mu.Lock()
	maxSeen := st.maxSeen
	st.closed = false
	st.mu.Unlock()
	t.Logf("at most %d hosts' DaemonSet pods were down at once (maxUnavailable 1)", maxSeen)
	if maxSeen != 1 {
		t.Errorf("%d hosts' DaemonSet pods were down at once; maxUnavailable is 1 for the whole cluster", maxSeen)
	}
	// Every host ends on the new template.
	for dsHashes(t, tc)[v1] > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the rollout did not reach every host: %v", dsHashes(t, tc))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dsHashes counts the pods of the live members by spec hash.
func dsHashes(t *testing.T, tc *testCluster) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range tc.members {
		if m.cancel == nil {
			continue
		}
		actual, err := m.rt.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range actual.Pods {
			out[p.Hash]++
		}
	}
	return out
}
