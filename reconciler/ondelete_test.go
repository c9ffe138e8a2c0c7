package reconciler

import (
	"strings"
	"testing"
)

// TestDaemonSetOnDelete: a DaemonSet pod with updateStrategy OnDelete keeps
// running its previous template when the template changes, and comes back
// with the new one once it is gone or has stopped.
func TestDaemonSetOnDelete(t *testing.T) {
	ds := tpod("agent-h", "sha256:new0000000000000", RestartAlways, "main")
	ds.Owner = Owner{Kind: "DaemonSet", Name: "agent"}
	ds.Rollout.OnDelete = true
	old := running(ds)
	old.Hash = "sha256:old0000000000000"
	stopped := withContainer(old, ActualContainer{Name: "main", State: Exited, ExitCode: 1, FinishedAt: now})
	gone := old
	gone.SandboxReady = false

	for _, tc := range []struct {
		name   string
		actual ActualPod
		want   string
	}{
		{"running: kept", old, "wait pod default/agent-h: updateStrategy OnDelete: runs its previous template"},
		{"stopped: replaced", stopped, "-/+ replace pod default/agent-h (spec changed"},
		{"sandbox gone: replaced", gone, "-/+ replace pod default/agent-h (spec changed"},
	} {
		res, err := Plan(Desired{Pods: []Pod{ds}}, Actual{Pods: []ActualPod{tc.actual}}, PlanOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if got := planText(res); !strings.Contains(got, tc.want) {
			t.Errorf("%s: plan\n%s\nwant it to contain %q", tc.name, got, tc.want)
		}
	}
	ds.Rollout.OnDelete = false
	res, _ := Plan(Desired{Pods: []Pod{ds}}, Actual{Pods: []ActualPod{old}}, PlanOptions{Now: now})
	if got := planText(res); !strings.Contains(got, "-/+ replace pod default/agent-h") {
		t.Errorf("RollingUpdate: plan\n%s\nwant a replacement", got)
	}
}
