package scheduler

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestDaemonSetRunsOn checks each host's own decision.
func TestDaemonSetRunsOn(t *testing.T) {
	ds := func(mods ...podMod) *appsv1.DaemonSet { return daemonSet("agent", mods...).Obj.(*appsv1.DaemonSet) }
	for _, tt := range []struct {
		name string
		ds   *appsv1.DaemonSet
		node Node
		want bool
	}{
		{"no selector: every host", ds(), mkNode("n1", withState(NodeDead), ineligible), true},
		{"selector matches", ds(selector("disk", "ssd")), mkNode("n1", labels("disk", "ssd", "zone", "a")), true},
		{"selector does not match", ds(selector("disk", "ssd")), mkNode("n1", labels("disk", "hdd")), false},
		{"label missing", ds(selector("disk", "ssd")), mkNode("n1"), false},
		{"implicit hostname", ds(selector(HostnameLabel, "n1")), mkNode("n1"), true},
		{"explicit hostname label wins", ds(selector(HostnameLabel, "n1")), mkNode("n1", labels(HostnameLabel, "other")), false},
		{"nil", nil, mkNode("n1"), false},
	} {
		if got := DaemonSetRunsOn(tt.ds, tt.node); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
