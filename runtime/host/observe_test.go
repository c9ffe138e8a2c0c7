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
	if c, _ := containerOf(a, "nginx"); c.State != reconciler.Running || c.Restarts != 1 {
		t.Errorf("nginx after its restart: %+v", c)
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
