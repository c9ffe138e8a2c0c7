package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/specs"
)

// clusterJobPods returns the Job pods of the members' runtimes (the killed
// ones' too): name → "Running" or "Exited(N)", and name → member.
func (tc *testCluster) jobPodStates() (map[string]string, map[string]*clusterMember) {
	states, where := map[string]string{}, map[string]*clusterMember{}
	for _, m := range tc.members {
		actual, err := m.rt.Observe(context.Background())
		if err != nil {
			tc.t.Fatal(err)
		}
		for _, p := range actual.Pods {
			if p.Owner.Kind != specs.KindJob {
				continue
			}
			for _, c := range p.Containers {
				states[p.Name] = string(c.State)
				if c.State == reconciler.Exited {
					states[p.Name] = fmt.Sprintf("Exited(%d)", c.ExitCode)
				}
			}
			where[p.Name] = m
		}
	}
	return states, where
}

// TestClusterJobRunsOnce: in a cluster the leader runs the Job controller.
// A Job of 3 completions, 2 at a time, gets its pods placed across the
// hosts, completes once they exit 0, and is not run again when the leader
// dies and an unrelated commit arrives: its outcome is in the placement.
func TestClusterJobRunsOnce(t *testing.T) {
	src := newFakeSource()
	src.push("v1", map[string]string{"job.yaml": jobManifest, "web.yaml": deployment("web", 2, "busybox")})
	tc := newTestCluster(t, src)
	for _, name := range []string{"a", "b", "c"} {
		tc.start(name, 0, nil)
	}
	exited := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(exited) < 3 {
		states, where := tc.jobPodStates()
		if len(states) > 3 {
			t.Fatalf("more than 3 Job pods: %v", states)
		}
		running := 0
		for name, st := range states {
			if st != "Running" {
				continue
			}
			running++
			if running > 2 {
				t.Fatalf("more than 2 Job pods run at once (parallelism 2): %v", states)
			}
			m := where[name]
			if err := m.rt.SetContainer("agenttest", name, reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: 0, FinishedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			exited[name] = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Job's pods did not all run: %v (exited %v)", states, exited)
		}
		time.Sleep(20 * time.Millisecond)
	}
	lead := tc.leader()
	deadline = time.Now().Add(30 * time.Second)
	for {
		if js, ok := jobStatus(lead.agent.Status(), "work"); ok && js.Condition == "Complete" && js.Succeeded == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader does not report the Job complete: %+v", lead.agent.Status().Jobs)
		}
		time.Sleep(20 * time.Millisecond)
	}

	tc.kill(lead)
	src.push("v2: unrelated", map[string]string{"job.yaml": jobManifest, "web.yaml": deployment("web", 3, "busybox")})
	var next *clusterMember
	deadline = time.Now().Add(60 * time.Second)
	for {
		for _, m := range tc.members {
			if m != lead && m.agent.Status().Cluster != nil && m.agent.Status().Cluster.Leader == m.name {
				next = m
			}
		}
		if next != nil {
			if js, ok := jobStatus(next.agent.Status(), "work"); ok && js.Condition == "Complete" && len(tc.pods()[next.name]) > 0 {
				if p := next.agent.Status().Cluster.Placement; p != nil && p.Replicas >= 3 {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader placing v2 with the Job complete; leader %v", next)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Give the new leader a few steps to (wrongly) start the Job again.
	for range 20 {
		states, _ := tc.jobPodStates()
		for name, st := range states {
			if st == "Running" || !exited[name] {
				t.Fatalf("the Job ran again after the leader changed: %v", states)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}
