package cli

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// e2eJob is a Job of busybox pods that exit 0: 3 completions, 2 at a time.
func e2eJob(namespace string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: work, namespace: %s}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox:1.36
        command: [sh, -c, 'exit 0']
`, namespace)
}

// jobOf returns the status of Job name.
func jobOf(s agent.Status, name string) (reconciler.JobStatus, bool) {
	for _, j := range s.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return reconciler.JobStatus{}, false
}

// jobPodNames lists the pods of `kelpie ps` whose name starts with prefix.
func jobPodNames(pods map[string]psPod, prefix string) []string {
	var out []string
	for name := range pods {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestAgentJobEndToEnd: on a real containerd a Job of 3 completions, 2 at
// a time, runs 3 busybox pods to success and completes; its finished pods
// stay (Exited 0, for their logs); an agent restarted over the same state
// dir runs it no more.
func TestAgentJobEndToEnd(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	e, hc := newAgentHost(t, addr, "jobs")
	ns := fmt.Sprintf("job%d", hc.Octet)

	v1 := e.push("v1: a Job", map[string]string{"job.yaml": e2eJob(ns)})
	e.start()
	start := time.Now()
	s := e.waitFor("the Job complete", 2*time.Minute, func(s agent.Status) bool {
		j, ok := jobOf(s, "work")
		return s.Applied != nil && s.Applied.Hash == v1 && ok && j.Condition == "Complete"
	})
	t.Logf("Job complete %.1fs after the agent started", time.Since(start).Seconds())
	if j, _ := jobOf(s, "work"); j.Succeeded != 3 || j.Failed != 0 || j.Active != 0 {
		t.Fatalf("job status %+v", j)
	}
	pods := e.pods()
	names := jobPodNames(pods, "work-")
	e.stop() // its log is read below, and it starts again over the same state dir
	if len(names) != 3 {
		t.Fatalf("job pods %v, want the 3 that succeeded", names)
	}
	for _, n := range names {
		p := pods[n]
		if len(p.Containers) != 1 || p.Containers[0].State != string(reconciler.Exited) || p.Containers[0].ExitCode != 0 {
			t.Fatalf("pod %s: %+v, want exited 0", n, p.Containers)
		}
	}
	if !strings.Contains(e.log.String(), "Job work completed") {
		t.Errorf("no completion line in the agent log:\n%s", e.log)
	}

	// Restart the agent: the Job is recorded complete, nothing reruns.
	e.log.Reset()
	e.start()
	s = e.waitFor("the restarted agent's first sync", time.Minute, func(s agent.Status) bool {
		j, ok := jobOf(s, "work")
		return s.LastSync != nil && ok && j.Condition == "Complete"
	})
	// A few drift checks (every 10 s by default; events bring them sooner)
	// have had the time to rerun it if they would.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if got := jobPodNames(e.pods(), "work-"); !slices.Equal(got, names) {
			t.Fatalf("job pods after the restart %v, want %v", got, names)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if j, _ := jobOf(s, "work"); j.Succeeded != 3 {
		t.Fatalf("after the restart: %+v", j)
	}
	e.stop()
	if strings.Contains(e.log.String(), "create pod") {
		t.Fatalf("the restarted agent created pods:\n%s", e.log)
	}
}
