package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// TestRolloutStalled: a new version whose pods never become Ready stops
// the rollout with the old pod still serving; once progressDeadlineSeconds
// (the default 600) passed without progress, on the agent's clock, status
// says the rollout is stalled and kelpie_rollout_stalled is 1; once the
// new pods become Ready, it recovers.
func TestRolloutStalled(t *testing.T) {
	h := newHarness(t)
	p := &fakeProber{rt: h.rt, now: h.clock.Now, answer: func(reconciler.ActualPod, string) bool { return true }}
	h.src.push("v1", map[string]string{"app.yaml": probedDeployment("web", 2, "1")})
	h.startProbed(p)
	h.clock.Advance(time.Second) // the first probes
	h.waitFor("v1 ready", func(s Status) bool {
		return len(s.Pods) == 2 && s.Pods[0].PodReady && s.Pods[1].PodReady
	})
	v1 := h.hashes()
	// The new version never becomes Ready.
	p.setAnswer(func(pod reconciler.ActualPod, cmd string) bool { return cmd == "live" || pod.Hash == v1[pod.Name] })
	h.src.push("v2: never ready", map[string]string{"app.yaml": probedDeployment("web", 2, "2")})
	seq := h.seq()
	h.agent.Trigger("test")
	h.waitSync(seq)
	newPods := func() int {
		n := 0
		for name, hash := range h.hashes() {
			if hash != v1[name] {
				n++
			}
		}
		return n
	}
	if n := newPods(); n != 1 {
		t.Fatalf("%d pods run v2 after the sync, want 1 (maxUnavailable 1)", n)
	}
	start := h.clock.Now()
	var s Status
	for {
		h.advance(50 * time.Second)
		s = h.settle()
		if len(s.Stalled) > 0 {
			break
		}
		if h.clock.Now().Sub(start) > 700*time.Second {
			t.Fatalf("no stall reported %v after the rollout stopped; waiting %v", h.clock.Now().Sub(start), s.Waiting)
		}
	}
	if took := h.clock.Now().Sub(start); took < 600*time.Second {
		t.Errorf("stalled after %v, before progressDeadlineSeconds (600s)", took)
	}
	if got, want := s.Stalled[0].String(), "agenttest/web: rollout stalled: 2 of 2 new pods not ready after 600s"; got != want {
		t.Errorf("stall %q, want %q", got, want)
	}
	if n := newPods(); n != 1 {
		t.Errorf("%d pods run v2 while stalled, want 1: the old pod keeps serving", n)
	}
	if m := h.metrics(); !strings.Contains(m, `kelpie_rollout_stalled{workload="agenttest/web"} 1`) {
		t.Errorf("metrics lack kelpie_rollout_stalled 1:\n%s", grepLines(m, "kelpie_rollout"))
	}

	// The new version becomes Ready: the rollout goes on and recovers.
	p.setAnswer(func(reconciler.ActualPod, string) bool { return true })
	for i := 0; len(h.settle().Stalled) > 0 || newPods() < 2; i++ {
		if i > 60 {
			t.Fatalf("the rollout did not recover: %d pods run v2, stalled %v", newPods(), h.agent.Status().Stalled)
		}
		h.advance(time.Second)
	}
	if m := h.metrics(); !strings.Contains(m, `kelpie_rollout_stalled{workload="agenttest/web"} 0`) {
		t.Errorf("metrics lack kelpie_rollout_stalled 0 after recovery:\n%s", grepLines(m, "kelpie_rollout"))
	}
}

// settle makes the agent step twice at the clock's time (two syncs, one
// after the other) and returns its status once the first step, with what
// it computes after its sync, is done.
func (h *harness) settle() Status {
	h.t.Helper()
	for range 2 {
		seq := h.seq()
		h.agent.Trigger("test")
		h.waitSync(seq)
	}
	return h.agent.Status()
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRolloutStalledAlert: a stalled rollout fires KelpieRolloutStalled
// and its recovery resolves it; in a cluster only the leader sends it.
func TestRolloutStalledAlert(t *testing.T) {
	stall := RolloutStall{Workload: "agenttest/web", NotReady: 2, Total: 2, DeadlineSeconds: 600,
		Message: "rollout stalled: 2 of 2 new pods not ready after 600s"}
	leader := &viewCluster{name: "a", leader: gossip.Leadership{Leader: "a", Self: true}}
	follower := &viewCluster{name: "b", leader: gossip.Leadership{Leader: "a"}}
	for _, tc := range []struct {
		name    string
		cluster Cluster
		want    []string
	}{
		{"lone host", nil, []string{"firing KelpieRolloutStalled agenttest/web", "resolved KelpieRolloutStalled agenttest/web"}},
		{"leader", leader, []string{"firing KelpieRolloutStalled agenttest/web", "resolved KelpieRolloutStalled agenttest/web"}},
		{"follower", follower, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := alertAgent(t, tc.cluster)
			a.rollouts.stalls = []RolloutStall{stall}
			a.checkAlerts()
			a.checkAlerts() // still firing: not sent again
			got := sent(t, a, "workload")
			a.rollouts.stalls = nil
			a.checkAlerts()
			got = append(got, sent(t, a, "workload")...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("sent %v, want %v", got, tc.want)
			}
		})
	}
}
