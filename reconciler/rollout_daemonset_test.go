package reconciler

import (
	"strings"
	"testing"
	"time"
)

// TestDaemonSetRollingUpdate: a rolling DaemonSet's changed pod is
// replaced at once on a lone host, and in a cluster only once the leader
// allows it; a pod that is down is replaced either way.
func TestDaemonSetRollingUpdate(t *testing.T) {
	ds := tpod("agent-h", "sha256:new0000000000000", RestartAlways, "main")
	ds.Owner = Owner{Kind: "DaemonSet", Name: "agent"}
	ds.Rollout = Rollout{Rolling: true, MaxUnavailable: 1, Replicas: 1}
	old := running(ds)
	old.Hash = "sha256:old0000000000000"
	gone := old
	gone.SandboxReady = false
	const replace, held = "-/+ replace pod default/agent-h", "wait pod default/agent-h: rolling update across hosts: waiting for the leader"
	for _, tc := range []struct {
		name    string
		actual  ActualPod
		allowed map[string]bool
		want    string
	}{
		{"lone host: at once", old, nil, replace},
		{"cluster, not allowed: held", old, map[string]bool{}, held},
		{"cluster, another pod allowed: held", old, map[string]bool{"default/agent-g": true}, held},
		{"cluster, allowed", old, map[string]bool{"default/agent-h": true}, replace},
		{"cluster, down: replaced without leave", gone, map[string]bool{}, replace},
	} {
		res, err := Plan(Desired{Pods: []Pod{ds}}, Actual{Pods: []ActualPod{tc.actual}}, PlanOptions{Now: now, RollingUpdates: true, RolloutAllowed: tc.allowed})
		if err != nil {
			t.Fatal(err)
		}
		if got := planText(res); !strings.Contains(got, tc.want) {
			t.Errorf("%s: plan\n%s\nwant it to contain %q", tc.name, got, tc.want)
		}
	}
}

// TestRolloutWorkloads: the leader's view of a site's workloads does not
// depend on the host: a DaemonSet whose nodeSelector the host does not
// match is listed with the hash its pods have where they run, its
// maxUnavailable and minReadySeconds; a Deployment with its
// progressDeadlineSeconds (600 by default).
func TestRolloutWorkloads(t *testing.T) {
	state := loadText(t, deployment("web", 3, "")+"---\n"+`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  minReadySeconds: 5
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: "50%"}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {role: edge}
      containers: [{name: main, image: busybox}]
`)
	ws := RolloutWorkloads(state)
	if len(ws) != 2 {
		t.Fatalf("%d workloads, want 2: %+v", len(ws), ws)
	}
	d, s := ws[0], ws[1]
	if d.Kind == "DaemonSet" {
		d, s = s, d
	}
	if d.Kind != "Deployment" || d.Key() != "default/web" || d.Replicas != 3 || d.ProgressDeadline != DefaultProgressDeadline || !d.Rollout.Rolling {
		t.Errorf("Deployment: %+v", d)
	}
	edge, _ := Expand(state, Host{Name: "h1", Labels: map[string]string{"role": "edge"}})
	pod := findPod(t, edge, "default/"+DaemonSetPodName("agent", "h1"))
	if s.Kind != "DaemonSet" || s.Key() != "default/agent" || s.Hash != pod.Hash || s.MaxUnavailable == nil || s.MaxUnavailable.String() != "50%" ||
		s.Rollout.MinReady != 5*time.Second || s.NodeSelector["role"] != "edge" {
		t.Errorf("DaemonSet: %+v (pod hash %s)", s, pod.Hash)
	}
	if pod.Rollout != s.Rollout {
		t.Errorf("pod's rollout %+v, the leader's %+v", pod.Rollout, s.Rollout)
	}
}
