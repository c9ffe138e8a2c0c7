package reconciler

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/workload"
)

// jobNow is the time of the Job tests.
var jobNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseJobPodName(t *testing.T) {
	for _, tt := range []struct {
		job, pod   string
		short      string
		index, seq int
		ok         bool
	}{
		{"work", "work-abcde-0", "abcde", -1, 0, true},
		{"work", "work-abcde-2-17", "abcde", 2, 17, true},
		{"my-job", "my-job-0a1b2-3", "0a1b2", -1, 3, true},
		{"work", "worker-abcde-0", "", 0, 0, false},
		{"work", "work-abcde", "", 0, 0, false},
		{"work", "work-abcde-x", "", 0, 0, false},
		{"work", "work-abcde-01", "", 0, 0, false},
		{"work", "work-abcde-1-2-3", "", 0, 0, false},
	} {
		short, index, seq, ok := parseJobPodName(tt.job, tt.pod)
		if ok != tt.ok || ok && (short != tt.short || index != tt.index || seq != tt.seq) {
			t.Errorf("parseJobPodName(%q, %q) = %q %d %d %v", tt.job, tt.pod, short, index, seq, ok)
		}
	}
	if got := shortIdentity("sha256:0123456789"); got != "01234" {
		t.Errorf("shortIdentity = %q", got)
	}
}

func TestJobPodState(t *testing.T) {
	exited := func(name string, code int) ActualContainer {
		return ActualContainer{Name: name, State: Exited, ExitCode: code, FinishedAt: jobNow}
	}
	run := func(name string) ActualContainer { return ActualContainer{Name: name, State: Running, Restarts: 1} }
	for _, tt := range []struct {
		name    string
		policy  RestartPolicy
		sandbox bool
		cs      []ActualContainer
		want    workload.PodPhase
		exits   int
	}{
		{"nothing yet", RestartNever, false, nil, workload.PodPending, 0},
		{"running", RestartNever, true, []ActualContainer{run("a"), run("b")}, workload.PodRunning, 0},
		{"one of two exited", RestartNever, true, []ActualContainer{exited("a", 0), run("b")}, workload.PodRunning, 1},
		{"all exited 0", RestartNever, true, []ActualContainer{exited("a", 0), exited("b", 0)}, workload.PodSucceeded, 2},
		{"all exited, one failed, Never", RestartNever, true, []ActualContainer{exited("a", 0), exited("b", 3)}, workload.PodFailed, 2},
		{"exited 1 under OnFailure waits for its restart", RestartOnFailure, true, []ActualContainer{exited("a", 0), exited("b", 1)}, workload.PodRunning, 2},
		{"finished with its sandbox gone", RestartNever, false, []ActualContainer{exited("a", 0), exited("b", 0)}, workload.PodSucceeded, 2},
		{"init failed under Never", RestartNever, true, []ActualContainer{exited("i", 2)}, workload.PodFailed, 1},
		{"init failed under OnFailure waits for its retry", RestartOnFailure, true, []ActualContainer{exited("i", 2)}, workload.PodPending, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &ActualPod{SandboxReady: tt.sandbox, Containers: tt.cs}
			o := jobPodState(a, tt.policy, []string{"i"}, []string{"a", "b"})
			if o.Phase != tt.want || len(o.Exits) != tt.exits {
				t.Fatalf("phase %s exits %v, want %s and %d exits", o.Phase, o.Exits, tt.want, tt.exits)
			}
			if (o.Phase == workload.PodSucceeded || o.Phase == workload.PodFailed) != !o.FinishedAt.IsZero() {
				t.Fatalf("finishedAt %v for phase %s", o.FinishedAt, o.Phase)
			}
		})
	}
}

// jobPod is a desired pod of a Job.
func jobPod(name string, policy RestartPolicy) Pod {
	p := tpod(name, "sha256:new", policy, "main")
	p.Owner = Owner{Kind: "Job", Name: "work"}
	return p
}

// TestPlanJobPods: the planner never reruns a finished Job pod, restarts
// only as restartPolicy says, and deletes Desired.Remove without pruning.
func TestPlanJobPods(t *testing.T) {
	exited := func(p Pod, code int) ActualPod {
		a := withContainer(running(p), ActualContainer{Name: "main", State: Exited, ExitCode: code, FinishedAt: jobNow.Add(-time.Minute)})
		a.Hash = "sha256:old"
		return a
	}
	never, onFailure := jobPod("work-abcde-0", RestartNever), jobPod("work-abcde-1", RestartOnFailure)
	for _, tt := range []struct {
		name    string
		desired Desired
		actual  []ActualPod
		want    string
	}{
		{"a finished pod with another spec hash is kept as it is", Desired{Pods: []Pod{never}}, []ActualPod{exited(never, 0)}, ""},
		{"a failed pod under Never is not restarted", Desired{Pods: []Pod{never}}, []ActualPod{exited(never, 1)}, ""},
		{"a finished pod whose sandbox is gone is not replaced", Desired{Pods: []Pod{never}},
			[]ActualPod{func() ActualPod { a := exited(never, 0); a.SandboxReady = false; return a }()}, ""},
		{"a running pod is not replaced for a spec change", Desired{Pods: []Pod{never}},
			[]ActualPod{func() ActualPod { a := running(never); a.Hash = "sha256:old"; return a }()}, ""},
		{"a failed container under OnFailure restarts", Desired{Pods: []Pod{onFailure}}, []ActualPod{exited(onFailure, 1)},
			"~ update container default/work-abcde-1/main (container main exited 1, restart 1 at once)\n"},
		{"a succeeded container under OnFailure does not", Desired{Pods: []Pod{onFailure}}, []ActualPod{exited(onFailure, 0)}, ""},
		{"Remove deletes without prune, and an empty desired state is fine", Desired{Remove: []Removal{{Namespace: "default", Name: "work-abcde-0", Reason: "ttlSecondsAfterFinished passed"}}},
			[]ActualPod{exited(never, 0)}, "- delete pod default/work-abcde-0 (ttlSecondsAfterFinished passed)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Plan(tt.desired, Actual{Pods: tt.actual}, PlanOptions{Now: jobNow})
			if err != nil {
				t.Fatal(err)
			}
			if got := actionStrings(res.Actions); got != tt.want {
				t.Fatalf("actions:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	if _, err := Plan(Desired{Pods: []Pod{never}, Remove: []Removal{{Namespace: "default", Name: never.Name}}}, Actual{}, PlanOptions{Now: jobNow}); err == nil {
		t.Fatal("a pod both desired and to remove was planned")
	}
}

const indexedJob = `apiVersion: batch/v1
kind: Job
metadata: {name: shards}
spec:
  completions: 3
  parallelism: 2
  completionMode: Indexed
  ttlSecondsAfterFinished: 60
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        args: [shard, $(JOB_COMPLETION_INDEX)]
`

// finish returns the actual pods of r with every pod's container exited code.
func finish(r JobsResult, code int) []ActualPod {
	var out []ActualPod
	for _, p := range r.Pods {
		a := running(p)
		a.Owner = p.Owner
		a.Containers = []ActualContainer{{Name: "main", State: Exited, ExitCode: code, FinishedAt: jobNow}}
		out = append(out, a)
	}
	return out
}

// TestSyncJobsIndexed runs an Indexed Job to its end and past its TTL.
func TestSyncJobsIndexed(t *testing.T) {
	state := loadText(t, indexedJob)
	host := &Host{Name: "h1"}
	r := SyncJobs(JobsInput{State: state, Now: jobNow, Host: host})
	if len(r.Pods) != 2 || len(r.Create) != 2 || len(r.Remove) != 0 {
		t.Fatalf("first step: pods %v create %v remove %v", podNames(r.Pods), r.Create, r.Remove)
	}
	for i, p := range r.Pods {
		if p.Owner != (Owner{Kind: "Job", Name: "shards"}) || p.RestartPolicy != RestartNever || p.Hostname != "shards-"+itoa(i) {
			t.Fatalf("pod %s: owner %v policy %s hostname %s", p.Name, p.Owner, p.RestartPolicy, p.Hostname)
		}
		c := p.Containers[0]
		if !slices.Contains(c.Args, itoa(i)) || !slices.ContainsFunc(c.Env, func(e EnvVar) bool { return e.Name == "JOB_COMPLETION_INDEX" && e.Value == itoa(i) }) {
			t.Fatalf("pod %s: args %v env %v", p.Name, c.Args, c.Env)
		}
	}
	// The records survive JSON, as the agent stores them.
	data, err := json.Marshal(r.Records)
	if err != nil {
		t.Fatal(err)
	}
	var recs JobRecords
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatal(err)
	}
	// Both succeed: the third index runs.
	r2 := SyncJobs(JobsInput{State: state, Records: recs, Pods: finish(r, 0), Now: jobNow.Add(time.Second), Host: host})
	if len(r2.Create) != 1 || len(r2.Pods) != 3 || r2.Jobs[0].Succeeded != 2 {
		t.Fatalf("second step: create %v pods %v status %+v", r2.Create, podNames(r2.Pods), r2.Jobs)
	}
	all := finish(r2, 0)
	r3 := SyncJobs(JobsInput{State: state, Records: r2.Records, Pods: all, Now: jobNow.Add(2 * time.Second), Host: host})
	if j := r3.Jobs[0]; j.Condition != "Complete" || j.Succeeded != 3 || j.CompletedIndexes != "0-2" || len(r3.Create) != 0 || len(r3.Pods) != 3 {
		t.Fatalf("third step: %+v create %v pods %v", j, r3.Create, podNames(r3.Pods))
	}
	if !r3.Wake.Equal(jobNow.Add(62 * time.Second)) {
		t.Fatalf("wake %v, want the TTL", r3.Wake)
	}
	if !slices.ContainsFunc(r3.Events, func(e JobEvent) bool { return strings.Contains(e.String(), "Job default/shards: Job shards completed") }) {
		t.Fatalf("events %v", r3.Events)
	}
	// An unchanged finished Job runs nothing more; past its TTL its pods go.
	r4 := SyncJobs(JobsInput{State: state, Records: r3.Records, Pods: all, Now: jobNow.Add(time.Hour), Host: host})
	if len(r4.Pods) != 0 || len(r4.Remove) != 3 || len(r4.Create) != 0 || r4.Jobs[0].Condition != "Complete" {
		t.Fatalf("after the TTL: pods %v remove %v", podNames(r4.Pods), r4.Remove)
	}
	// A Job that leaves the manifests loses its record.
	if r5 := SyncJobs(JobsInput{State: loadText(t, deployment("web", 1, "")), Records: r4.Records, Now: jobNow}); len(r5.Records.Jobs) != 0 {
		t.Fatalf("records of a removed Job: %v", r5.Records)
	}
}

func TestSyncJobsNodeSelector(t *testing.T) {
	state := loadText(t, strings.Replace(indexedJob, "      restartPolicy: Never\n", "      restartPolicy: Never\n      nodeSelector: {gpu: \"true\"}\n", 1))
	r := SyncJobs(JobsInput{State: state, Now: jobNow, Host: &Host{Name: "h1"}})
	if len(r.Pods) != 0 || len(r.Records.Jobs) != 0 || len(r.Notices) != 1 || !strings.Contains(r.Notices[0].String(), "does not match host h1; not run") {
		t.Fatalf("pods %v records %v notices %v", podNames(r.Pods), r.Records, r.Notices)
	}
	// Without a host (a cluster's leader), the scheduler places them.
	if r := SyncJobs(JobsInput{State: state, Now: jobNow}); len(r.Pods) != 2 {
		t.Fatalf("without a host: pods %v", podNames(r.Pods))
	}
}

const everyMinute = `apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox}]
`

// TestSyncJobsCron: one Job per tick, held back by Forbid, and a trigger.
func TestSyncJobsCron(t *testing.T) {
	state := loadText(t, everyMinute)
	r := SyncJobs(JobsInput{State: state, Now: jobNow.Add(30 * time.Second)})
	if len(r.Pods) != 0 || !r.Wake.Equal(jobNow.Add(time.Minute)) || len(r.CronJobs) != 1 {
		t.Fatalf("before the first tick: pods %v wake %v", podNames(r.Pods), r.Wake)
	}
	r = SyncJobs(JobsInput{State: state, Records: r.Records, Now: jobNow.Add(time.Minute)})
	tick := workload.CronJobName("tick", jobNow.Add(time.Minute))
	if len(r.Pods) != 1 || r.Pods[0].Owner.Name != tick || r.Jobs[0].CronJob != "tick" {
		t.Fatalf("at the tick: pods %v jobs %+v", podNames(r.Pods), r.Jobs)
	}
	// The same step again (a restart before the pods were seen): the same
	// pod, no second Job.
	again := SyncJobs(JobsInput{State: state, Records: r.Records, Now: jobNow.Add(time.Minute + time.Second)})
	if len(again.Records.CronJobs["default/tick"].Jobs) != 1 || !slices.Equal(podNames(again.Pods), podNames(r.Pods)) {
		t.Fatalf("again: %v %v", again.Records.CronJobs, podNames(again.Pods))
	}
	running := []ActualPod{running(r.Pods[0])}
	running[0].Owner = r.Pods[0].Owner
	// Next tick while it runs: Forbid holds it back.
	held := SyncJobs(JobsInput{State: state, Records: r.Records, Pods: running, Now: jobNow.Add(2 * time.Minute)})
	if len(held.Records.CronJobs["default/tick"].Jobs) != 1 || len(held.Create) != 0 {
		t.Fatalf("Forbid: %+v create %v", held.Records.CronJobs, held.Create)
	}
	// A trigger runs one now, whatever Forbid says.
	recs, name, err := TriggerCronJob(state, held.Records, "default", "tick", jobNow.Add(2*time.Minute))
	if err != nil || name != workload.ManualJobName("tick", jobNow.Add(2*time.Minute)) {
		t.Fatalf("trigger: %q %v", name, err)
	}
	if _, _, err := TriggerCronJob(state, recs, "default", "tick", jobNow.Add(2*time.Minute)); err == nil {
		t.Fatal("a second trigger in the same second was accepted")
	}
	if _, _, err := TriggerCronJob(state, recs, "default", "nope", jobNow); err == nil {
		t.Fatal("triggered an unknown CronJob")
	}
	tr := SyncJobs(JobsInput{State: state, Records: recs, Pods: running, Now: jobNow.Add(2*time.Minute + time.Second)})
	if len(tr.Create) != 1 || !strings.HasPrefix(tr.Create[0], "default/"+name+"-") {
		t.Fatalf("trigger: create %v", tr.Create)
	}
}
