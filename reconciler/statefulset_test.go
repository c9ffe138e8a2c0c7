package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// statefulManifest is a StatefulSet of replicas pods with one volume claim
// template, governed by a headless Service; extra goes under spec.
func statefulManifest(replicas int, extra string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: %d
  serviceName: db
  selector: {matchLabels: {app: db}}
%s  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: main
        image: busybox
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`, replicas, extra)
}

// TestExpandStatefulSet: one pod per ordinal, named, host-named and
// subdomained like Kubernetes, each with its own claim TEMPLATE-NAME-ORDINAL.
func TestExpandStatefulSet(t *testing.T) {
	d, notices := expandText(t, statefulManifest(3, "  updateStrategy: {rollingUpdate: {partition: 1}}\n"))
	if len(notices) > 0 {
		t.Fatalf("notices: %v", noticeStrings(notices))
	}
	if got, want := podNames(d.Pods), []string{"default/db-0", "default/db-1", "default/db-2"}; !slices.Equal(got, want) {
		t.Fatalf("pods %v, want %v", got, want)
	}
	var claims []string
	for _, c := range d.Claims {
		claims = append(claims, JoinName(c.Namespace, c.Name))
	}
	if want := []string{"default/data-db-0", "default/data-db-1", "default/data-db-2"}; !slices.Equal(claims, want) {
		t.Errorf("claims %v, want %v", claims, want)
	}
	for i := range 3 {
		p := findPod(t, d, fmt.Sprintf("default/db-%d", i))
		if p.Ordinal != i || p.Hostname != fmt.Sprintf("db-%d", i) || p.Subdomain != "db" {
			t.Errorf("pod %s: ordinal %d hostname %q subdomain %q", p.Name, p.Ordinal, p.Hostname, p.Subdomain)
		}
		r := p.Rollout
		if !r.Stateful || !r.OrderedReady || r.Partition != 1 || r.OnDelete || r.Rolling || r.MaxSurge != 0 {
			t.Errorf("pod %s: rollout %+v", p.Name, r)
		}
		if len(p.Volumes) != 1 {
			t.Fatalf("pod %s: volumes %v", p.Name, p.Volumes)
		}
		c, ok := p.Volumes[0].Source.(Claim)
		if !ok || p.Volumes[0].Name != "data" || c.Name != fmt.Sprintf("data-db-%d", i) || c.StorageBytes != 1<<30 {
			t.Errorf("pod %s: volume %+v", p.Name, p.Volumes[0])
		}
		if p.Hash != d.Pods[0].Hash {
			t.Errorf("pod %s: hash %s differs from db-0's %s: one template, one hash", p.Name, p.Hash, d.Pods[0].Hash)
		}
	}
	par, _ := expandText(t, statefulManifest(2, "  podManagementPolicy: Parallel\n  updateStrategy: {type: OnDelete}\n"))
	if r := par.Pods[0].Rollout; r.OrderedReady || !r.OnDelete || !r.Stateful {
		t.Errorf("Parallel, OnDelete: rollout %+v", r)
	}
}

// statefulActual is the actual state where the named pods of d run, Ready,
// owned by their StatefulSet, with hash (the desired one when "").
func statefulActual(d Desired, hash string, names ...string) []ActualPod {
	var out []ActualPod
	for _, p := range d.Pods {
		if !slices.Contains(names, p.Name) {
			continue
		}
		a := running(p)
		a.Owner = p.Owner
		if hash != "" {
			a.Hash = hash
		}
		a.ReadyKnown, a.Ready, a.ReadySince = true, true, now.Add(-time.Hour)
		out = append(out, a)
	}
	return out
}

// TestStatefulSetOrderedStart: OrderedReady creates one pod at a time, each
// once the lower ordinals are Ready; Parallel creates them all at once.
func TestStatefulSetOrderedStart(t *testing.T) {
	d, _ := expandText(t, statefulManifest(3, ""))
	for _, tc := range []struct {
		name    string
		actual  []ActualPod
		want    []string
		notWant []string
	}{
		{"none runs", nil,
			[]string{"+ create pod default/db-0", "wait pod default/db-1: podManagementPolicy OrderedReady: waits for db-0 to be Ready", "wait pod default/db-2: podManagementPolicy OrderedReady: waits for db-0"},
			[]string{"create pod default/db-1", "create pod default/db-2"}},
		{"db-0 Ready", statefulActual(d, "", "db-0"),
			[]string{"+ create pod default/db-1", "wait pod default/db-2: podManagementPolicy OrderedReady: waits for db-1 to be Ready"},
			[]string{"create pod default/db-2"}},
		{"db-0 not Ready", notReady(statefulActual(d, "", "db-0")),
			[]string{"wait pod default/db-1: podManagementPolicy OrderedReady: waits for db-0 to be Ready"},
			[]string{"create pod default/db-1"}},
	} {
		res, err := Plan(d, Actual{Pods: tc.actual}, PlanOptions{Now: now, RollingUpdates: true})
		if err != nil {
			t.Fatal(err)
		}
		got := planText(res)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: plan\n%s\nwant %q", tc.name, got, w)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(got, w) {
				t.Errorf("%s: plan\n%s\nhas %q", tc.name, got, w)
			}
		}
	}
	par, _ := expandText(t, statefulManifest(3, "  podManagementPolicy: Parallel\n"))
	res, _ := Plan(par, Actual{}, PlanOptions{Now: now, RollingUpdates: true})
	for i := range 3 {
		if got := planText(res); !strings.Contains(got, fmt.Sprintf("+ create pod default/db-%d", i)) {
			t.Errorf("Parallel: plan\n%s\nwant db-%d created", got, i)
		}
	}
}

// notReady marks the pods as running but not Ready.
func notReady(as []ActualPod) []ActualPod {
	for i := range as {
		as[i].Ready = false
	}
	return as
}

// TestStatefulSetReverseStop: scaling an OrderedReady StatefulSet down
// removes the highest ordinal first, one per plan; Parallel removes them
// together. Claims are never deleted.
func TestStatefulSetReverseStop(t *testing.T) {
	three, _ := expandText(t, statefulManifest(3, ""))
	one, _ := expandText(t, statefulManifest(1, ""))
	actual := Actual{Pods: statefulActual(three, "", "db-0", "db-1", "db-2")}
	for _, c := range three.Claims {
		actual.Claims = append(actual.Claims, ActualClaim{Namespace: c.Namespace, Name: c.Name})
	}
	res, err := Plan(one, actual, PlanOptions{Now: now, Prune: true, RollingUpdates: true})
	if err != nil {
		t.Fatal(err)
	}
	got := planText(res)
	for _, w := range []string{"- delete pod default/db-2", "wait pod default/db-1: StatefulSet db: pods stop from the highest ordinal down; waits for default/db-2 to be removed"} {
		if !strings.Contains(got, w) {
			t.Errorf("plan\n%s\nwant %q", got, w)
		}
	}
	if strings.Contains(got, "delete pod default/db-1") || strings.Contains(got, "delete claim") || !strings.Contains(got, "keep claim default/data-db-2") {
		t.Errorf("plan\n%s\nremoves db-1 with db-2, or a claim", got)
	}
	if !res.Continue {
		t.Error("Continue not set: the next pod would wait for another change")
	}
	// Once db-2 is gone, db-1 goes.
	actual.Pods = actual.Pods[:2]
	res, _ = Plan(one, actual, PlanOptions{Now: now, Prune: true, RollingUpdates: true})
	if got := planText(res); !strings.Contains(got, "- delete pod default/db-1") {
		t.Errorf("second plan\n%s\nwant db-1 deleted", got)
	}
	// Parallel: both at once.
	par, _ := expandText(t, statefulManifest(1, "  podManagementPolicy: Parallel\n"))
	parActual := Actual{Pods: statefulActual(three, par.Pods[0].Hash, "db-0", "db-1", "db-2")}
	res, _ = Plan(par, parActual, PlanOptions{Now: now, Prune: true, RollingUpdates: true})
	if got := planText(res); !strings.Contains(got, "- delete pod default/db-1") || !strings.Contains(got, "- delete pod default/db-2") {
		t.Errorf("Parallel: plan\n%s\nwant db-1 and db-2 deleted", got)
	}
}

// TestStatefulSetPartition: a rolling update replaces the ordinals at or
// above the partition, the highest first, one at a time, each Ready before
// the next; the ordinals below keep their template.
func TestStatefulSetPartition(t *testing.T) {
	d, _ := expandText(t, statefulManifest(3, "  updateStrategy: {rollingUpdate: {partition: 1}}\n"))
	const old = "sha256:0ld0000000000000000000000000000000000000000000000000000000000000"
	steps := []struct {
		name    string
		actual  []ActualPod
		want    []string
		notWant []string
	}{
		{"all old", statefulActual(d, old, "db-0", "db-1", "db-2"),
			[]string{"-/+ replace pod default/db-2", "wait pod default/db-1: rolling update: one pod at a time, the highest ordinal first; waits for db-2", "wait pod default/db-0: rollingUpdate partition 1"},
			[]string{"replace pod default/db-1", "replace pod default/db-0"}},
		{"db-2 new, not Ready", append(statefulActual(d, old, "db-0", "db-1"), notReady(statefulActual(d, "", "db-2"))...),
			[]string{"wait pod default/db-1: rolling update: one pod at a time, the highest ordinal first; waits for db-2 to be Ready"},
			[]string{"replace pod default/db-1", "replace pod default/db-0"}},
		{"db-2 new and Ready", append(statefulActual(d, old, "db-0", "db-1"), statefulActual(d, "", "db-2")...),
			[]string{"-/+ replace pod default/db-1", "wait pod default/db-0: rollingUpdate partition 1"},
			[]string{"replace pod default/db-0", "replace pod default/db-2"}},
		{"done", append(statefulActual(d, old, "db-0"), statefulActual(d, "", "db-1", "db-2")...),
			[]string{"wait pod default/db-0: rollingUpdate partition 1"},
			[]string{"replace pod"}},
	}
	for _, tc := range steps {
		res, err := Plan(d, Actual{Pods: tc.actual}, PlanOptions{Now: now, RollingUpdates: true})
		if err != nil {
			t.Fatal(err)
		}
		got := planText(res)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: plan\n%s\nwant %q", tc.name, got, w)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(got, w) {
				t.Errorf("%s: plan\n%s\nhas %q", tc.name, got, w)
			}
		}
	}
	// OnDelete: nothing is replaced while it runs.
	od, _ := expandText(t, statefulManifest(2, "  updateStrategy: {type: OnDelete}\n"))
	res, _ := Plan(od, Actual{Pods: statefulActual(od, old, "db-0", "db-1")}, PlanOptions{Now: now, RollingUpdates: true})
	if got := planText(res); strings.Contains(got, "replace") || !strings.Contains(got, "updateStrategy OnDelete") {
		t.Errorf("OnDelete: plan\n%s", got)
	}
}

// TestStatefulSetAcrossHosts: in a cluster a pod waits for its lower
// ordinals on other hosts, and is not created while another live host
// still runs a pod of its name.
func TestStatefulSetAcrossHosts(t *testing.T) {
	all, _ := expandText(t, statefulManifest(3, ""))
	here := Desired{Pods: []Pod{all.Pods[1]}, Claims: all.Claims[1:2]} // db-1 placed here
	for _, tc := range []struct {
		name      string
		elsewhere map[string]bool
		want      string
	}{
		{"db-0 not reported", map[string]bool{}, "wait pod default/db-1: podManagementPolicy OrderedReady: waits for db-0 to be Ready"},
		{"db-0 not Ready", map[string]bool{"default/db-0": false}, "wait pod default/db-1: podManagementPolicy OrderedReady: waits for db-0 to be Ready"},
		{"db-0 Ready elsewhere", map[string]bool{"default/db-0": true}, "+ create pod default/db-1"},
		{"db-1 still elsewhere", map[string]bool{"default/db-0": true, "default/db-1": true}, "wait pod default/db-1: StatefulSet: another host still runs db-1"},
	} {
		res, err := Plan(here, Actual{}, PlanOptions{Now: now, RollingUpdates: true, ReadyElsewhere: tc.elsewhere})
		if err != nil {
			t.Fatal(err)
		}
		got := planText(res)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: plan\n%s\nwant %q", tc.name, got, tc.want)
		}
		if tc.want[0] == 'w' && strings.Contains(got, "create pod default/db-1") {
			t.Errorf("%s: plan\n%s\ncreates db-1", tc.name, got)
		}
	}
}

// TestStatefulSetRollingUpdateAcrossHosts: in a cluster a changed pod is
// replaced only once every higher ordinal, wherever it runs, runs the new
// template and is Ready.
func TestStatefulSetRollingUpdateAcrossHosts(t *testing.T) {
	all, _ := expandText(t, statefulManifest(3, ""))
	const old = "sha256:0ld0000000000000000000000000000000000000000000000000000000000000"
	here := Desired{Pods: []Pod{all.Pods[1]}, Claims: all.Claims[1:2]} // db-1 placed here
	actual := Actual{Pods: statefulActual(all, old, "db-1")}
	newHash := all.Pods[0].Hash
	for _, tc := range []struct {
		name   string
		ready  map[string]bool
		hashes map[string]string
		want   string
	}{
		{"db-2 not updated", map[string]bool{"default/db-0": true, "default/db-2": true},
			map[string]string{"default/db-0": old, "default/db-2": old}, "wait pod default/db-1: rolling update: one pod at a time, the highest ordinal first; waits for db-2 to be updated"},
		{"db-2 being replaced", map[string]bool{"default/db-0": true},
			map[string]string{"default/db-0": old}, "waits for db-2 to be updated"},
		{"db-2 updated, not Ready", map[string]bool{"default/db-0": true, "default/db-2": false},
			map[string]string{"default/db-0": old, "default/db-2": newHash}, "waits for db-2 to be Ready"},
		{"db-2 updated and Ready", map[string]bool{"default/db-0": true, "default/db-2": true},
			map[string]string{"default/db-0": old, "default/db-2": newHash}, "-/+ replace pod default/db-1"},
		{"db-0 not Ready", map[string]bool{"default/db-0": false, "default/db-2": true},
			map[string]string{"default/db-0": old, "default/db-2": newHash}, "waits for db-0 to be Ready"},
	} {
		res, err := Plan(here, actual, PlanOptions{Now: now, RollingUpdates: true, ReadyElsewhere: tc.ready, HashElsewhere: tc.hashes})
		if err != nil {
			t.Fatal(err)
		}
		got := planText(res)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: plan\n%s\nwant %q", tc.name, got, tc.want)
		}
		if tc.want[0] == 'w' && strings.Contains(got, "replace pod default/db-1") {
			t.Errorf("%s: plan\n%s\nreplaces db-1", tc.name, got)
		}
	}
}

// TestStatefulSetReverseStopAcrossHosts: scaling down in a cluster, a
// host removes its pod only once no other host reports a higher ordinal of
// the set; a pod the leader moved away (its ordinal stays) does not wait.
func TestStatefulSetReverseStopAcrossHosts(t *testing.T) {
	three, _ := expandText(t, statefulManifest(3, ""))
	actual := Actual{Pods: statefulActual(three, "", "db-1")} // db-1 runs here
	opts := PlanOptions{Now: now, Prune: true, RollingUpdates: true, AllowEmpty: true,
		StatefulReplicas: map[string]int{"default/db": 1},
		ReadyElsewhere:   map[string]bool{"default/db-0": true, "default/db-2": true}}
	res, err := Plan(Desired{}, actual, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := planText(res); strings.Contains(got, "delete pod default/db-1") || !strings.Contains(got, "waits for default/db-2 to be removed on its host") {
		t.Errorf("scaled to 1, db-2 still elsewhere: plan\n%s", got)
	}
	opts.ReadyElsewhere = map[string]bool{"default/db-0": true}
	res, _ = Plan(Desired{}, actual, opts)
	if got := planText(res); !strings.Contains(got, "- delete pod default/db-1") {
		t.Errorf("scaled to 1, db-2 gone: plan\n%s\nwant db-1 deleted", got)
	}
	// Moved away: still 3 replicas, db-1 now placed elsewhere.
	opts.StatefulReplicas = map[string]int{"default/db": 3}
	opts.ReadyElsewhere = map[string]bool{"default/db-0": true, "default/db-2": true}
	res, _ = Plan(Desired{}, actual, opts)
	if got := planText(res); !strings.Contains(got, "- delete pod default/db-1") {
		t.Errorf("moved away: plan\n%s\nwant db-1 deleted at once", got)
	}
}
