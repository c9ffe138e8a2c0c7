package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
	"github.com/kelpie-dev/kelpie/specs"
)

// The golden files of the human output of plan, apply, status and plan
// --cluster, under testdata/; `go test ./cli -run Golden -update` rewrites
// them for review in the diff. Each is made from fixed inputs (a planned
// result, a served status, a recorded cluster view), so none needs
// containerd; what varies between runs (commit hashes of a fresh repository,
// seconds ago) is normalised before the comparison.

// goldenNow is the fixed time of the golden outputs.
var goldenNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// siteV1 and siteV2 are two revisions of a small site: v2 scales web and
// changes its image, changes the ConfigMap the worker uses, removes a pod,
// adds a network and a Job.
var (
	siteV1 = map[string]string{
		"web.yaml": webDeployment(2, "busybox:1.36"),
		"worker.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: batch}
---
apiVersion: v1
kind: Pod
metadata: {name: worker}
spec:
  containers:
  - name: worker
    image: busybox:1.36
    envFrom: [{configMapRef: {name: settings}}]
`,
		"old.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: old}\nspec:\n  containers: [{name: main, image: busybox:1.36}]\n",
	}
	siteV2 = map[string]string{
		"web.yaml":    webDeployment(3, "busybox:1.37"),
		"worker.yaml": strings.Replace(siteV1["worker.yaml"], "mode: batch", "mode: stream", 1),
		"net.yaml": `apiVersion: kelpie.dev/v1alpha1
kind: Network
metadata: {name: sensors}
spec: {type: bridge, subnet: 10.77.0.0/24, isolated: true}
`,
		"job.yaml": `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: busybox:1.36}]
`,
	}
)

// goldenHostPlan plans host test-host from site v1, converged, to v2.
func goldenHostPlan(t *testing.T) hostPlan {
	t.Helper()
	expand := func(files map[string]string) (reconciler.Desired, []reconciler.Notice) {
		fsys := fstest.MapFS{}
		for name, text := range files {
			fsys[name] = &fstest.MapFile{Data: []byte(text)}
		}
		state, err := specs.Load(fsys, ".", specs.Options{})
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return reconciler.Expand(state, reconciler.Host{Name: "test-host"})
	}
	was, _ := expand(siteV1)
	will, notices := expand(siteV2)
	opts := reconciler.PlanOptions{Now: goldenNow, Prune: true}
	res, err := reconciler.Plan(will, reconciler.Converged(was), opts)
	if err != nil {
		t.Fatal(err)
	}
	return hostPlan{Node: "test-host", Result: res, Notices: notices, Desired: will, Options: opts}
}

// TestPlanOutputGolden: `kelpie plan` for people, with changes and without.
func TestPlanOutputGolden(t *testing.T) {
	hp := goldenHostPlan(t)
	if len(hp.Result.Actions) == 0 {
		t.Fatal("the golden plan has no actions")
	}
	var b strings.Builder
	printPlan(&b, colorizer{}, hp)
	b.WriteString("\n--- planned again once applied ---\n\n")
	res, err := reconciler.Plan(hp.Desired, reconciler.Converged(hp.Desired), hp.Options)
	if err != nil {
		t.Fatal(err)
	}
	printPlan(&b, colorizer{}, hostPlan{Node: "test-host", Result: res})
	goldenFile(t, "testdata/plan.golden", b.String())
}

// TestApplyOutputGolden: `kelpie apply` for people, executing the plan of
// TestPlanOutputGolden: every action printed as it ends (one fails, and
// the pod that needs its network is skipped), then the summary.
func TestApplyOutputGolden(t *testing.T) {
	hp := goldenHostPlan(t)
	var b strings.Builder
	pr := applyPrinter{w: &b}
	pr.begin(hp)
	var report reconciler.Report
	for i, a := range hp.Result.Actions {
		r := reconciler.ActionResult{Action: a, Duration: time.Duration(i+1) * 150 * time.Millisecond}
		switch {
		case a.Subject.Type == reconciler.SubjectNetwork:
			r.Err = errors.New("CNI ADD: plugin bridge: address in use")
		case a.Subject.Name == "web-2":
			r.Err, r.Duration = fmt.Errorf("network sensors failed: %w", reconciler.ErrSkipped), 0
		}
		switch {
		case r.Skipped():
			report.Skipped++
		case r.Err != nil:
			report.Failed++
		default:
			report.Succeeded++
		}
		report.Results = append(report.Results, r)
		pr.done(a, r.Err, r.Duration)
	}
	if report.Failed != 1 || report.Skipped != 1 {
		t.Fatalf("the golden apply fails %d and skips %d actions, want 1 and 1", report.Failed, report.Skipped)
	}
	pr.end(hp, report, 2340*time.Millisecond)
	goldenFile(t, "testdata/apply.golden", b.String())
}

// quorum is the quorum status of expect and alive members, as gossip
// words it.
func quorum(expect, alive int) agent.QuorumStatus {
	q := gossip.CheckQuorum(expect, alive)
	return agent.QuorumStatus{OK: q.OK, Expect: q.Expect, Alive: q.Alive, Needed: q.Needed, Reason: q.Reason}
}

// agoSeconds matches the seconds `kelpie status` counts back from now,
// which move while the test runs.
var agoSeconds = regexp.MustCompile(`\b\d+s ago\b`)

// TestStatusOutputGolden: `kelpie status` for people, of a fixed status an
// agent serves: one host on its own, and one in a cluster.
func TestStatusOutputGolden(t *testing.T) {
	clearEnv(t)
	now := time.Now()
	applied := &agent.AppliedCommit{CommitInfo: agent.CommitInfo{Hash: strings.Repeat("a", 40), Subject: "scale web to 3", Author: "Ada <ada@example.com>"},
		AppliedAt: now.Add(-5*time.Minute - 30*time.Second)}
	pods := []agent.PodStatus{
		{Namespace: "default", Name: "web-0", State: "Running", Ready: "1/1", IP: "10.244.0.2"},
		{Namespace: "default", Name: "web-1", State: "Pending", Ready: "0/1", Restarts: 3},
		{Namespace: "default", Name: "worker", State: "Running", Ready: "1/1", IP: "10.244.0.4"},
	}
	single := agent.Status{
		Node: "h1", Repo: []string{"/srv/site.git", "http://mirror.lan/site.git"}, Ref: "main", Path: "apps",
		Applied:  applied,
		LastSync: &agent.SyncInfo{Seq: 7, Time: now.Add(-12 * time.Second), Reason: "poll", Result: "ok", Commit: applied.Hash, Actions: 2, Seconds: 1.25},
		Pods:     pods,
		Waiting:  []string{"pod default/web-1: waiting for image busybox:1.37"},
		Notices:  []string{"batch/v1 Job default/migrate: not yet supported by the host runtime; not run"},
	}
	clustered := single
	clustered.Node, clustered.Waiting, clustered.Notices = "a", nil, nil
	clustered.DataPath = "programmed: 14 chains, 31 rules, 9 map and set elements"
	clustered.DNS = "listening on 10.244.0.1:53"
	clustered.Services = []agent.ServiceStatus{
		{Namespace: "default", Name: "web", ClusterIP: "10.96.12.7", Endpoints: 3, Ports: []agent.ServicePortStatus{
			{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30080, Endpoints: []string{"10.244.0.3:8080", "10.244.1.2:8080", "10.244.2.2:8080"}}}},
		{Namespace: "default", Name: "web-pods", ClusterIP: "None", Endpoints: 3, Ports: []agent.ServicePortStatus{{Protocol: "TCP", Port: 8080}}},
		{Namespace: "shop", Name: "db", Endpoints: 0, Ports: []agent.ServicePortStatus{{Protocol: "TCP", Port: 5432}, {Name: "dns", Protocol: "UDP", Port: 53}}},
	}
	clustered.Workloads = []agent.WorkloadStatus{
		{Kind: "Deployment", Namespace: "default", Name: "web", Desired: 3, Updated: 2, Ready: 2, Health: agent.HealthProgressing, Message: "2 of 3 pods run the current template"},
		{Kind: "DaemonSet", Namespace: "kube-system", Name: "logs", Desired: 2, Updated: 2, Ready: 2, Health: agent.HealthHealthy},
		{Kind: "StatefulSet", Namespace: "shop", Name: "db", Desired: 3, Updated: 3, Ready: 2, Health: agent.HealthDegraded, Message: "1 of 3 pods not ready"},
	}
	clustered.Alerts = []agent.AlertStatus{
		{Alert: "KelpieHostDown", Summary: "host c (10.0.0.3:7946) is lost to the cluster", Since: now.Add(-5*time.Minute - 10*time.Second), Cluster: true},
		{Alert: "KelpieCommitRefused", Summary: "commit eeeeeeeeeeee refused: it gives the cluster no pods", Since: now.Add(-40 * time.Second)},
	}
	empty := strings.Repeat("e", 40)
	clustered.Pending = &agent.PendingCommit{CommitInfo: agent.CommitInfo{Hash: empty, Subject: "remove everything"}, Reason: agent.KindEmpty, Since: now.Add(-40 * time.Second)}
	clustered.LastError = &agent.SyncError{Kind: agent.KindEmpty, Commit: empty,
		Message: "commit eeeeeeeeeeee refused: it gives the cluster no pods while 4 run (start the agents with --allow-empty to allow it)"}
	clustered.LastSync = &agent.SyncInfo{Seq: 9, Time: now.Add(-3 * time.Second), Reason: "member b saw eeeeeeeeeeee", Result: "refused", Commit: empty}
	clustered.Cluster = &agent.ClusterStatus{
		Self: "a", Leader: "a", Term: 3, Election: "first eligible member",
		Quorum:    quorum(3, 2),
		Guarantee: "one leader: placement changes need 2 of 3 members, so a minority side of a partition changes nothing; placements are fenced by term",
		Placement: &agent.PlacementStatus{Term: 3, Seq: 2, Leader: "a", Commit: applied.Hash, Replicas: 4,
			Unplaceable: []string{"default/big-0: Dimension memory exhausted on 2 nodes"}, Waiting: []string{"default/web-2 on c"}},
		Note: "commit eeeeeeeeeeee has no pods; not placed",
		Members: []agent.MemberStatus{
			{Name: "a", Addr: "10.0.0.1:7946", State: "alive", Eligible: true, Leader: true, Commit: applied.Hash, PodsRunning: 2, PodsReady: 2, Ready: true, Pods: []string{"default/web-0", "default/worker"}, PodRange: "10.244.0.0/24"},
			{Name: "b", Addr: "10.0.0.2:7946", State: "alive", Eligible: true, Commit: applied.Hash, PodsRunning: 1, PodsReady: 1, Ready: true, Pods: []string{"default/web-1"}, PodRange: "10.244.1.0/24"},
			{Name: "c", Addr: "10.0.0.3:7946", State: "dead", Since: now.Add(-5*time.Minute - 30*time.Second), Eligible: true, Pods: []string{"default/web-2"}},
		},
	}
	for _, tc := range []struct {
		name   string
		status agent.Status
	}{
		{"status", single},
		{"status-cluster", clustered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&fakeAgent{status: tc.status})
			defer srv.Close()
			res := runMain(t, "--no-color", "status", "--agent", srv.URL)
			if res.code != 0 {
				t.Fatalf("status: exit %d\n%s%s", res.code, res.stdout, res.stderr)
			}
			goldenFile(t, "testdata/"+tc.name+".golden", agoSeconds.ReplaceAllString(res.stdout, "Ns ago"))
			res = runMain(t, "status", "--agent", srv.URL, "-o", "json")
			var got agent.Status
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
				t.Fatalf("status -o json: exit %d, %v\n%s%s", res.code, err, res.stdout, res.stderr)
			}
			if !reflect.DeepEqual(got.Workloads, tc.status.Workloads) || len(got.Alerts) != len(tc.status.Alerts) {
				t.Errorf("status -o json: workloads %+v and %d alerts, want %+v and %d", got.Workloads, len(got.Alerts), tc.status.Workloads, len(tc.status.Alerts))
			}
		})
	}
}

// TestPlanClusterOutputGolden: `kelpie plan --cluster` for people, against
// a recorded cluster view: a candidate that scales and changes the image
// while a host is dead and the cluster has no quorum; and a candidate
// before the cluster's first placement, which waits for the expected
// members.
func TestPlanClusterOutputGolden(t *testing.T) {
	clearEnv(t)
	r := testenv.NewGitRepo(t)
	r.Write("web.yaml", webDeployment(4, "busybox:1.36"))
	c1 := r.Commit("v1")
	view := agent.ClusterView{
		Self: "a", Leader: "a", Term: 2, Now: goldenNow, RescheduleAfter: time.Minute,
		Nodes: []scheduler.Node{{Name: "a"}, {Name: "b"}, {Name: "c", State: scheduler.NodeDead, DownSince: goldenNow.Add(-20 * time.Second)}},
		Placement: &scheduler.Placement{Term: 2, Seq: 1, Commit: c1, Assignments: map[string]string{
			"default/web-0": "a", "default/web-1": "b", "default/web-2": "c", "default/web-3": "a",
		}},
		Quorum: quorum(5, 2),
	}
	r.Write("web.yaml", webDeployment(6, "busybox:1.37"))
	res := runMain(t, "--no-color", "plan", "--cluster", "--agent", viewAgent(t, view).URL, "--repo", r.Dir)
	if res.code != 2 {
		t.Fatalf("plan --cluster: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	goldenFile(t, "testdata/plancluster.golden", strings.ReplaceAll(res.stdout, c1[:12], "C1SHA"))

	first := view
	first.Placement, first.Nodes = nil, view.Nodes[:1]
	first.Quorum = quorum(3, 1)
	res = runMain(t, "--no-color", "plan", "--cluster", "--agent", viewAgent(t, first).URL, "--repo", r.Dir, "HEAD")
	if res.code != 2 {
		t.Fatalf("plan --cluster before the first placement: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	goldenFile(t, "testdata/plancluster-wait.golden", strings.ReplaceAll(res.stdout, c1[:12], "C1SHA"))
}
