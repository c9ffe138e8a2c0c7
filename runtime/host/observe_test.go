package host

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// converge plans desired against what the runtime observes, executes the
// plan, and checks that planning again finds nothing to do. It returns the
// actions it executed, as strings.
func (tr *testRuntime) converge(t *testing.T, desired reconciler.Desired, now time.Time, prune bool) []string {
	t.Helper()
	ctx := tr.ctx(t)
	plan := func() reconciler.PlanResult {
		t.Helper()
		actual, err := tr.Observe(ctx)
		if err != nil {
			t.Fatalf("Observe: %v", err)
		}
		res, err := reconciler.Plan(desired, actual, reconciler.PlanOptions{Now: now, Prune: prune})
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		return res
	}
	res := plan()
	var did []string
	for _, a := range res.Actions {
		did = append(did, a.String())
	}
	if rep := reconciler.Execute(ctx, tr, res.Actions, reconciler.ExecOptions{}); !rep.OK() {
		t.Fatalf("Execute %v: %v", did, rep.Err())
	}
	if again := plan(); !again.Empty() {
		var left []string
		for _, a := range again.Actions {
			left = append(left, a.String())
		}
		t.Fatalf("after executing %v, the plan still has %v", did, left)
	}
	return did
}

func TestPlanExecuteConverges(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	now := time.Now()

	claim := reconciler.Claim{Namespace: testNS, Name: "data", StorageBytes: 1 << 20}
	web := webPod()
	web.Containers = web.Containers[:1]
	web.TerminationGracePeriod = time.Second // busybox httpd as PID 1 ignores SIGTERM
	web.Volumes = append(web.Volumes, reconciler.Volume{Name: "data", Source: claim})
	web.Containers[0].Mounts = append(web.Containers[0].Mounts, reconciler.Mount{Volume: "data", Path: "/data"})
	side := busyboxPod("side", "exec sleep 1000")
	side.HostNetwork = true
	desired := reconciler.Desired{Pods: []reconciler.Pod{side, web}, Claims: []reconciler.Claim{claim}}

	if did := tr.converge(t, desired, now, false); len(did) != 3 {
		t.Errorf("first apply did %v, want a claim and two pods", did)
	}
	nginx := tr.load(t, testNS, "web-0", "nginx")
	if _, errOut, code := tr.execIn(t, nginx, "sh", "-c", "echo kept > /data/file"); code != 0 {
		t.Fatalf("write to the claim: %s", errOut)
	}

	// Drift: a container killed by hand is restarted after its back-off...
	task, err := nginx.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "nginx exited", 10*time.Second, func() (bool, string) {
		a, _ := tr.observePod(t, testNS, "web-0")
		c, _ := containerOf(a, "nginx")
		return c.State == reconciler.Exited, fmt.Sprintf("%+v", c)
	})
	did := tr.converge(t, desired, time.Now().Add(reconciler.BackoffInitial+time.Second), false)
	if len(did) != 1 || !strings.Contains(did[0], "exited 137") {
		t.Errorf("after a kill the plan did %v, want one restart", did)
	}
	a, _ := tr.observePod(t, testNS, "web-0")
	if c, _ := containerOf(a, "nginx"); c.State != reconciler.Running || c.Restarts != 1 || c.Streak != 1 {
		t.Errorf("nginx after its restart: %+v, want running, 1 restart in a streak of 1", c)
	}
	// Killed again at once: the streak goes on, so the second restart
	// waits for the back-off (the first one did not: the kubelet's rules).
	if task, err = tr.load(t, testNS, "web-0", "nginx").Task(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exited reconciler.ActualContainer
	waitFor(t, "nginx exited again", 10*time.Second, func() (bool, string) {
		a, _ := tr.observePod(t, testNS, "web-0")
		exited, _ = containerOf(a, "nginx")
		return exited.State == reconciler.Exited, fmt.Sprintf("%+v", exited)
	})
	if exited.Streak != 1 || exited.StartedAt.IsZero() || exited.FinishedAt.Before(exited.StartedAt) {
		t.Errorf("nginx exited: %+v, want streak 1 and its run's start from the label", exited)
	}
	res, err := reconciler.Plan(desired, mustObserve(t, tr), reconciler.PlanOptions{Now: exited.FinishedAt.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Waiting) != 1 || !strings.Contains(res.Waiting[0].Reason, "waits for back-off 10s") {
		t.Errorf("a second crash right after the first: %s; want a wait for the 10 s back-off", fmt.Sprintf("actions %v, waiting %v", res.Actions, res.Waiting))
	}
	did = tr.converge(t, desired, time.Now().Add(reconciler.BackoffInitial+time.Second), false)
	if len(did) != 1 || !strings.Contains(did[0], "restart 2 after back-off 10s") {
		t.Errorf("after the back-off the plan did %v, want the second restart", did)
	}

	// ... and one deleted by hand is created again.
	sideCtr := tr.load(t, testNS, "side", "main")
	if t2, err := sideCtr.Task(ctx, nil); err == nil {
		if err := stopTask(ctx, t2, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := sideCtr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}
	if did := tr.converge(t, desired, now, false); len(did) != 1 || !strings.Contains(did[0], "missing") {
		t.Errorf("after a deletion the plan did %v, want the container created", did)
	}

	// A changed pod is replaced; its claim's data stays.
	web.Hash = "sha256:" + strings.Repeat("2e", 32)
	desired.Pods[1] = web
	if did := tr.converge(t, desired, now, false); len(did) != 1 || !strings.Contains(did[0], "replace pod "+testNS+"/web-0") {
		t.Errorf("after a change the plan did %v, want a replace", did)
	}
	if out, _, _ := tr.execIn(t, tr.load(t, testNS, "web-0", "nginx"), "cat", "/data/file"); out != "kept\n" {
		t.Errorf("claim data after the replace = %q", out)
	}

	// Pruned pods go, and leave nothing; the claim stays.
	desired.Pods = desired.Pods[1:]
	if did := tr.converge(t, desired, now, true); len(did) != 1 || !strings.Contains(did[0], "delete pod "+testNS+"/side") {
		t.Errorf("pruning did %v, want one delete", did)
	}
	tr.assertPodGone(t, testNS, "side")
	actual, err := tr.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(actual.Claims) != 1 || actual.Claims[0].Name != "data" {
		t.Errorf("claims = %+v", actual.Claims)
	}
}

// mustObserve observes the runtime or ends the test.
func mustObserve(t *testing.T, tr *testRuntime) reconciler.Actual {
	t.Helper()
	a, err := tr.Observe(tr.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return a
}
