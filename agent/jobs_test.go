package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/specs"
)

// jobManifest is a Job of 3 completions, 2 at a time, restartPolicy Never.
const jobManifest = `apiVersion: batch/v1
kind: Job
metadata: {name: work, namespace: agenttest}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: [sh, -c, "exit 0"]}]
`

// cronManifest is a CronJob that ticks every minute with policy.
func cronManifest(policy string) string {
	return `apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: agenttest}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: ` + policy + `
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox, command: [sh, -c, "exit 0"]}]
`
}

// jobPods lists the fake's pods owned by a Job, by name, with their state:
// "Running" or "Exited(N)".
func (h *harness) jobPods() map[string]string {
	h.t.Helper()
	actual, err := h.rt.Observe(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range actual.Pods {
		if p.Owner.Kind != specs.KindJob {
			continue
		}
		state := "Pending"
		for _, c := range p.Containers {
			state = string(c.State)
			if c.State == reconciler.Exited {
				state = fmt.Sprintf("Exited(%d)", c.ExitCode)
			}
		}
		out[p.Name] = state
	}
	return out
}

// exitJobPods makes every running Job pod's container exit with code.
func (h *harness) exitJobPods(code int) []string {
	h.t.Helper()
	var names []string
	for name, state := range h.jobPods() {
		if state != "Running" {
			continue
		}
		if err := h.rt.SetContainer("agenttest", name, reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: code, FinishedAt: h.clock.Now()}); err != nil {
			h.t.Fatal(err)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// advance moves the fake clock by d once the loop waits, and waits until
// it waits again.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	n := h.clock.Created()
	h.clock.Advance(d)
	waitTimer(h.t, h.clock, n)
}

// jobStatus returns the status of Job name, and whether there is one.
func jobStatus(s Status, name string) (reconciler.JobStatus, bool) {
	for _, j := range s.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return reconciler.JobStatus{}, false
}

// countRunning counts the values "Running" of m.
func countRunning(m map[string]string) int {
	n := 0
	for _, s := range m {
		if s == "Running" {
			n++
		}
	}
	return n
}

// TestJobCompletesOnce: a Job of 3 completions, 2 at a time, runs 3 pods
// to success and completes; its finished pods stay (for their logs); an
// unrelated commit and an agent re-created from the same state dir run it
// no more.
func TestJobCompletesOnce(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"job.yaml": jobManifest})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	h.waitFor("2 pods running", func(s Status) bool { j, ok := jobStatus(s, "work"); return ok && j.Active == 2 })
	if got := countRunning(h.jobPods()); got != 2 {
		t.Fatalf("running job pods %v, want 2", h.jobPods())
	}
	for round, running := range []int{2, 1} {
		// The pods of this round run (the third is made by the step after
		// the first two exit): exiting them sooner would miss it.
		h.waitFor(fmt.Sprintf("%d job pods running after %d succeeded", running, 2*round), func(s Status) bool {
			j, _ := jobStatus(s, "work")
			n := 0
			for _, p := range s.Pods {
				if p.State == "Running" {
					n++
				}
			}
			return j.Succeeded == 2*round && n == running
		})
		h.exitJobPods(0)
		h.advance(DefaultDriftInterval)
	}
	s := h.waitFor("the Job complete", func(s Status) bool { j, _ := jobStatus(s, "work"); return j.Condition == "Complete" })
	if j, _ := jobStatus(s, "work"); j.Succeeded != 3 || j.Failed != 0 || j.Active != 0 {
		t.Fatalf("job status %+v", j)
	}
	pods := h.jobPods()
	if len(pods) != 3 {
		t.Fatalf("job pods after completion %v, want the 3 finished ones kept", pods)
	}
	for name, st := range pods {
		if st != "Exited(0)" {
			t.Fatalf("pod %s is %s after completion", name, st)
		}
	}
	if fi, err := os.Stat(h.cfg.JobsPath()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("jobs.json: %v, %v", fi, err)
	}

	// An unrelated commit: nothing of the Job runs again.
	calls := len(h.rt.Calls())
	v2 := h.src.push("v2", map[string]string{"job.yaml": jobManifest, "app.yaml": deployment("web", 1, "busybox")})
	seq := h.seq()
	h.agent.Trigger("test")
	h.waitSync(seq)
	h.waitFor("v2 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v2.Hash })
	for _, c := range h.mutations(calls) {
		if c.Method != "CreatePod" || !strings.HasPrefix(c.Subject, "agenttest/web-") {
			t.Fatalf("an unrelated commit touched the Job: %v", h.mutations(calls))
		}
	}

	// A new agent over the same state dir: the Job stays complete.
	h.stop()
	calls = len(h.rt.Calls())
	h.start()
	s = h.waitSync(0)
	h.advance(DefaultDriftInterval)
	s = h.waitFor("the Job's status", func(s Status) bool { _, ok := jobStatus(s, "work"); return ok })
	if j, _ := jobStatus(s, "work"); j.Condition != "Complete" || j.Succeeded != 3 {
		t.Fatalf("after restart: %+v", j)
	}
	if m := h.mutations(calls); len(m) != 0 {
		t.Fatalf("the restarted agent changed the host: %v", m)
	}
	if len(h.jobPods()) != 3 {
		t.Fatalf("job pods after restart: %v", h.jobPods())
	}
}

// TestJobNeverRestartsFailedPod: with restartPolicy Never a pod that
// exits 1 is not restarted; the Job creates a new pod after its back-off.
func TestJobNeverRestartsFailedPod(t *testing.T) {
	h := newHarness(t)
	h.src.push("v1", map[string]string{"job.yaml": strings.Replace(jobManifest, "completions: 3\n  parallelism: 2", "completions: 1", 1)})
	h.start()
	h.waitFor("1 pod running", func(s Status) bool { j, ok := jobStatus(s, "work"); return ok && j.Active == 1 })
	failed := h.exitJobPods(1)
	calls := len(h.rt.Calls())
	h.advance(DefaultDriftInterval)
	h.waitFor("the failure counted", func(s Status) bool { j, _ := jobStatus(s, "work"); return j.Failed == 1 })
	for _, c := range h.mutations(calls) {
		if strings.Contains(c.Subject, failed[0]) {
			t.Fatalf("the failed pod was acted on: %v", c)
		}
	}
	// The back-off (10 s) passes: a second pod.
	h.advance(DefaultDriftInterval)
	h.waitFor("a second pod", func(Status) bool { return len(h.jobPods()) == 2 })
	if st := h.jobPods()[failed[0]]; st != "Exited(1)" {
		t.Fatalf("the failed pod is %s, want kept as Exited(1)", st)
	}
}

// cronJobs lists the Jobs of CronJob tick in the status, sorted.
func cronJobs(s Status) []string {
	var out []string
	for _, j := range s.Jobs {
		if j.CronJob == "tick" {
			out = append(out, j.Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestCronJobOncePerTick: a CronJob ticking every minute runs one Job per
// tick as the clock goes; a restart of the agent across a tick neither
// skips it nor runs it twice.
func TestCronJobOncePerTick(t *testing.T) {
	h := newHarness(t)
	h.src.push("v1", map[string]string{"cron.yaml": cronManifest("Allow")})
	h.start()
	h.waitFor("the CronJob seen", func(s Status) bool { return len(s.CronJobs) == 1 })
	// The clock starts at 03:04:05; ticks at 03:05, 03:06, …
	for h.clock.Now().Before(time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)) {
		h.advance(DefaultDriftInterval)
	}
	s := h.waitFor("the 03:05 Job", func(s Status) bool { return len(cronJobs(s)) == 1 })
	first := cronJobs(s)[0]
	h.exitJobPods(0)
	// Stop the agent; the clock passes the 03:06 tick while it is down.
	h.advance(10 * time.Second)
	h.waitFor("the Job complete", func(s Status) bool { j, _ := jobStatus(s, first); return j.Condition == "Complete" })
	h.stop()
	h.clock.Advance(55 * time.Second) // 03:06:10
	h.start()
	s = h.waitFor("the 03:06 Job after the restart", func(s Status) bool { return len(cronJobs(s)) == 2 })
	if got := cronJobs(s); got[1] != fmt.Sprintf("tick-%d", time.Date(2026, 1, 2, 3, 6, 0, 0, time.UTC).Unix()/60) {
		t.Fatalf("jobs %v", got)
	}
	h.exitJobPods(0)
	// Up to 03:06:50: no other Job; 03:07: the third.
	for i := 0; i < 4; i++ {
		h.advance(DefaultDriftInterval)
	}
	if got := cronJobs(h.agent.Status()); len(got) != 2 {
		t.Fatalf("jobs before 03:07: %v", got)
	}
	h.advance(DefaultDriftInterval)
	h.waitFor("the 03:07 Job", func(s Status) bool { return len(cronJobs(s)) == 3 })
	// Job pods: one per tick, never two.
	if pods := h.jobPods(); len(pods) != 3 {
		t.Fatalf("job pods %v, want one per tick", pods)
	}
}

// TestCronJobConcurrency: Forbid holds a tick back while the last Job
// runs; Replace deletes it and starts the new one.
func TestCronJobConcurrency(t *testing.T) {
	for _, policy := range []string{"Forbid", "Replace"} {
		t.Run(policy, func(t *testing.T) {
			h := newHarness(t)
			h.src.push("v1", map[string]string{"cron.yaml": cronManifest(policy)})
			h.start()
			h.waitFor("the CronJob seen", func(s Status) bool { return len(s.CronJobs) == 1 })
			for h.clock.Now().Before(time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)) {
				h.advance(DefaultDriftInterval)
			}
			s := h.waitFor("the 03:05 Job", func(s Status) bool { return len(cronJobs(s)) == 1 })
			first := cronJobs(s)[0]
			for h.clock.Now().Before(time.Date(2026, 1, 2, 3, 6, 0, 0, time.UTC)) {
				h.advance(DefaultDriftInterval)
			}
			h.advance(DefaultDriftInterval)
			s = h.agent.Status()
			switch policy {
			case "Forbid":
				if got := cronJobs(s); len(got) != 1 || countRunning(h.jobPods()) != 1 {
					t.Fatalf("Forbid: jobs %v, pods %v", got, h.jobPods())
				}
				// The running Job ends: the held tick runs.
				h.exitJobPods(0)
				h.advance(10 * time.Second)
				h.waitFor("the held tick's Job", func(s Status) bool { return len(cronJobs(s)) == 2 })
			case "Replace":
				s = h.waitFor("the 03:06 Job", func(s Status) bool { return len(cronJobs(s)) == 1 && cronJobs(s)[0] != first })
				pods := h.jobPods()
				for name := range pods {
					if strings.HasPrefix(name, first+"-") {
						t.Fatalf("Replace kept a pod of %s: %v", first, pods)
					}
				}
				if len(pods) != 1 {
					t.Fatalf("Replace: pods %v", pods)
				}
			}
		})
	}
}

// TestCronTriggerAPI: POST /api/v1/cronjobs/NS/NAME/trigger starts a Job
// now; an unknown CronJob is 404.
func TestCronTriggerAPI(t *testing.T) {
	h := newHarness(t)
	h.cfg.APIToken = "secret-token-0123456789"
	h.src.push("v1", map[string]string{"cron.yaml": cronManifest("Forbid")})
	h.start()
	h.waitFor("the CronJob seen", func(s Status) bool { return len(s.CronJobs) == 1 })
	srv := httptest.NewServer(h.agent.Handler())
	defer srv.Close()
	post := func(path, token string) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/api/v1/cronjobs/agenttest/tick/trigger", ""); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}
	if code := post("/api/v1/cronjobs/agenttest/nope/trigger", "secret-token-0123456789"); code != http.StatusNotFound {
		t.Fatalf("unknown CronJob: %d", code)
	}
	if code := post("/api/v1/cronjobs/agenttest/tick/trigger", "secret-token-0123456789"); code != http.StatusCreated {
		t.Fatalf("trigger: %d", code)
	}
	want := fmt.Sprintf("tick-manual-%d", h.clock.Now().Unix())
	h.waitFor("the manual Job", func(s Status) bool { return slices.Equal(cronJobs(s), []string{want}) })
	h.waitFor("its pod", func(Status) bool { return countRunning(h.jobPods()) == 1 })
}
