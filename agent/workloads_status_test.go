package agent

import (
	"slices"
	"testing"
)

// TestLoneHostWorkloadsAndAlerts: a lone agent's status counts its
// Deployment's pods (desired, updated, ready) and calls it healthy; a
// refused commit fires KelpieCommitRefused in the status without any
// --notify, and the fix resolves it, both kept as recent notifications
// not sent.
func TestLoneHostWorkloadsAndAlerts(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 2, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	want := WorkloadStatus{Kind: "Deployment", Namespace: "agenttest", Name: "web", Desired: 2, Updated: 2, Ready: 2, Health: HealthHealthy}
	for i := 0; ; i++ {
		s := h.agent.Status()
		if slices.Equal(s.Workloads, []WorkloadStatus{want}) {
			break
		}
		if i == 20 {
			t.Fatalf("workloads %+v, want %+v", s.Workloads, want)
		}
		h.advance(stallCheckEvery) // the counts are computed at most every stallCheckEvery
	}

	bad := h.src.push("broken", map[string]string{"app.yaml": brokenManifest})
	seq := h.seq()
	h.agent.Trigger("test")
	h.waitSync(seq)
	s := h.waitFor("the refusal alert", func(s Status) bool { return len(s.Alerts) == 1 })
	if a := s.Alerts[0]; a.Alert != AlertCommitRefused || a.Cluster || a.Since.IsZero() {
		t.Errorf("alert %+v, want %s", a, AlertCommitRefused)
	}
	if n := s.Notifications; len(n) != 1 || n[0].Status != "firing" || n[0].Alert != AlertCommitRefused || n[0].Sent {
		t.Errorf("notifications %+v, want one firing, not sent", n)
	}
	if s.Pending == nil || s.Pending.Hash != bad.Hash {
		t.Fatalf("pending %+v, want the broken commit", s.Pending)
	}

	h.src.push("fixed", map[string]string{"app.yaml": deployment("web", 2, "busybox")})
	seq = h.seq()
	h.agent.Trigger("test")
	h.waitSync(seq)
	s = h.waitFor("the alert resolved", func(s Status) bool { return len(s.Alerts) == 0 && len(s.Notifications) == 2 })
	if n := s.Notifications[0]; n.Status != "resolved" || n.Alert != AlertCommitRefused || n.Sent {
		t.Errorf("newest notification %+v, want the refusal resolved, not sent", n)
	}
}
