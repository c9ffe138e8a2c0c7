package workload

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testID is the identity of the test Job: pods are named j-abcde-SEQ.
const testID = "sha256:abcdef0123"

// testJob returns a defaulted Job "j" (completions 1, parallelism 1,
// backoffLimit 6, restartPolicy Never) changed by mut.
func testJob(mut func(*batchv1.JobSpec)) Job {
	s := batchv1.JobSpec{
		Completions: ptr(int32(1)), Parallelism: ptr(int32(1)), BackoffLimit: ptr(int32(6)),
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever}},
	}
	if mut != nil {
		mut(&s)
	}
	return Job{Namespace: "default", Name: "j", Identity: testID, Spec: s}
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// pod returns an observed pod of the test Job's current run.
func pod(seq int, phase PodPhase) JobPod {
	return JobPod{Name: JobPodName("j", testID, seq, -1), Identity: testID, Seq: seq, Index: -1, Phase: phase}
}

// ipod returns an observed pod of an Indexed run.
func ipod(seq, index int, phase PodPhase) JobPod {
	return JobPod{Name: JobPodName("j", testID, seq, index), Identity: testID, Seq: seq, Index: index, Phase: phase}
}

// failed returns a failed pod whose container "c" exited code.
func failed(seq, code int) JobPod {
	p := pod(seq, PodFailed)
	p.Exits = []ContainerExit{{Name: "c", ExitCode: code}}
	return p
}

// running returns a running pod of the test Job.
func running(seq int) JobPod { return pod(seq, PodRunning) }

// active returns the record of pods seqs of the test Job.
func active(seqs ...int) []JobPodRecord {
	var out []JobPodRecord
	for _, s := range seqs {
		out = append(out, JobPodRecord{Name: JobPodName("j", testID, s, -1), Seq: s, Index: -1})
	}
	return out
}

// names returns the names of pods to create.
func names(cs []JobPodToCreate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// deleted returns the names of pods to delete.
func deleted(ds []PodDeletion) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

func TestSyncJob(t *testing.T) {
	running0 := rec(func(r *JobRecord) { r.Created, r.Active = 1, active(0) })
	for _, tc := range []struct {
		name string
		job  Job
		rec  JobRecord
		pods []JobPod
		now  time.Time
		// want* check the decision; a nil slice wants none.
		wantCreate  []string
		wantDelete  []string
		wantCond    JobCondition
		wantReason  string
		wantRecord  func(*testing.T, JobRecord)
		wantWake    time.Time
		wantExpire  time.Time
		wantExpired bool
		wantEvent   string
		wantActive  int
	}{
		{name: "a new Job creates its first pod",
			job: testJob(nil), now: t0,
			wantCreate: []string{"j-abcde-0"}, wantActive: 1, wantEvent: "Job j started",
			wantRecord: func(t *testing.T, r JobRecord) {
				if r.Identity != testID || !r.StartTime.Equal(t0) || r.Created != 1 || !reflect.DeepEqual(r.Active, active(0)) {
					t.Errorf("record %+v", r)
				}
			}},
		{name: "completions 3 parallelism 2 starts 2",
			job: testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = ptr(int32(3)), ptr(int32(2)) }), now: t0,
			wantCreate: []string{"j-abcde-0", "j-abcde-1"}, wantActive: 2},
		{name: "a success makes room for the next pod",
			job:  testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = ptr(int32(3)), ptr(int32(2)) }),
			rec:  rec(func(r *JobRecord) { r.Created, r.Active = 2, active(0, 1) }),
			pods: []JobPod{pod(0, PodSucceeded), running(1)}, now: t0,
			wantCreate: []string{"j-abcde-2"}, wantActive: 2, wantEvent: "pod j-abcde-0 succeeded (1/3 succeeded)",
			wantRecord: func(t *testing.T, r JobRecord) {
				if r.Succeeded != 1 || r.Created != 3 || !reflect.DeepEqual(r.Active, active(1, 2)) {
					t.Errorf("record %+v", r)
				}
			}},
		{name: "the last pods to run are no more than the completions left",
			job:  testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = ptr(int32(3)), ptr(int32(2)) }),
			rec:  rec(func(r *JobRecord) { r.Created, r.Active, r.Succeeded = 3, active(2), 2 }),
			pods: []JobPod{pod(0, PodSucceeded), pod(1, PodSucceeded), running(2)}, now: t0,
			wantActive: 1},
		{name: "completions reached: Complete, the others deleted",
			job:  testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = ptr(int32(2)), ptr(int32(2)) }),
			rec:  rec(func(r *JobRecord) { r.Created, r.Active, r.Succeeded = 3, active(1, 2), 1 }),
			pods: []JobPod{pod(0, PodSucceeded), pod(1, PodSucceeded), running(2)}, now: t0,
			wantDelete: []string{"j-abcde-2"}, wantCond: JobComplete, wantReason: ReasonCompletionsReached,
			wantEvent: "Job j completed: CompletionsReached: 2/2 succeeded",
			wantRecord: func(t *testing.T, r JobRecord) {
				if !r.FinishTime.Equal(t0) || r.Active != nil {
					t.Errorf("record %+v", r)
				}
			}},
		{name: "a finished Job never runs again",
			job:  testJob(nil),
			rec:  rec(func(r *JobRecord) { r.Created, r.Succeeded, r.Condition, r.FinishTime = 1, 1, JobComplete, t0 }),
			pods: []JobPod{pod(0, PodSucceeded)}, now: at(time.Hour),
			wantCond: JobComplete},
		{name: "a finished Job whose pods are gone never runs again",
			job: testJob(nil),
			rec: rec(func(r *JobRecord) { r.Created, r.Succeeded, r.Condition, r.FinishTime = 1, 1, JobComplete, t0 }),
			now: at(time.Hour), wantCond: JobComplete},
		{name: "a changed template runs anew and deletes the earlier run's pods",
			job: testJob(nil),
			rec: JobRecord{Identity: "sha256:0000011111", Created: 1, Succeeded: 1, Condition: JobComplete, FinishTime: t0},
			pods: []JobPod{{Name: "j-00000-0", Identity: "sha256:0000011111", Index: -1, Phase: PodSucceeded},
				{Name: "j-00000-1", Identity: "sha256:0000011111", Seq: 1, Index: -1, Phase: PodRunning}},
			now:        at(time.Hour),
			wantCreate: []string{"j-abcde-0"}, wantDelete: []string{"j-00000-0", "j-00000-1"}, wantActive: 1,
			wantEvent: "Job j changed (00000 → abcde): runs anew",
			wantRecord: func(t *testing.T, r JobRecord) {
				if r.Succeeded != 0 || r.Condition != "" || !r.StartTime.Equal(at(time.Hour)) {
					t.Errorf("record %+v", r)
				}
			}},
		{name: "a failure is counted and replaced after 10s",
			job: testJob(nil), rec: running0,
			pods: []JobPod{failed(0, 1)}, now: at(2 * time.Second),
			wantWake: at(12 * time.Second), wantEvent: "pod j-abcde-0 failed: container c exited 1 (1 of backoffLimit 6)",
			wantRecord: func(t *testing.T, r JobRecord) {
				if r.Failed != 1 || r.FailuresSinceSuccess != 1 || !r.LastFailure.Equal(at(2*time.Second)) || r.Active != nil {
					t.Errorf("record %+v", r)
				}
			}},
		{name: "the replacement comes once the back-off passed",
			job:  testJob(nil),
			rec:  rec(func(r *JobRecord) { r.Created, r.Failed, r.FailuresSinceSuccess, r.LastFailure = 1, 1, 1, at(0) }),
			pods: []JobPod{failed(0, 1)}, now: at(10 * time.Second),
			wantCreate: []string{"j-abcde-1"}, wantActive: 1},
		{name: "the back-off doubles",
			job:      testJob(nil),
			rec:      rec(func(r *JobRecord) { r.Created, r.Failed, r.FailuresSinceSuccess, r.LastFailure = 3, 3, 3, at(0) }),
			now:      at(39 * time.Second),
			wantWake: at(40 * time.Second)},
		{name: "failures beyond backoffLimit fail the Job",
			job: testJob(func(s *batchv1.JobSpec) {
				s.BackoffLimit, s.Parallelism, s.Completions = ptr(int32(1)), ptr(int32(2)), ptr(int32(2))
			}),
			rec:  rec(func(r *JobRecord) { r.Created, r.Failed, r.Active = 3, 1, active(1, 2) }),
			pods: []JobPod{failed(0, 1), failed(1, 2), running(2)}, now: t0,
			wantDelete: []string{"j-abcde-2"}, wantCond: JobFailed, wantReason: ReasonBackoffLimitExceeded,
			wantEvent: "Job j failed: BackoffLimitExceeded: 2 failed pods, more than backoffLimit 1"},
		{name: "OnFailure: container restarts count against backoffLimit",
			job: testJob(func(s *batchv1.JobSpec) {
				s.BackoffLimit = ptr(int32(3))
				s.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			}),
			rec:  running0,
			pods: []JobPod{func() JobPod { p := running(0); p.Restarts = 3; return p }()}, now: t0,
			wantDelete: []string{"j-abcde-0"}, wantCond: JobFailed, wantReason: ReasonBackoffLimitExceeded},
		{name: "OnFailure: fewer restarts keep running",
			job: testJob(func(s *batchv1.JobSpec) {
				s.BackoffLimit = ptr(int32(3))
				s.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			}),
			rec:  running0,
			pods: []JobPod{func() JobPod { p := running(0); p.Restarts = 2; return p }()}, now: t0,
			wantActive: 1},
		{name: "OnFailure with backoffLimit 0: one restart fails the Job",
			job: testJob(func(s *batchv1.JobSpec) {
				s.BackoffLimit = ptr(int32(0))
				s.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			}),
			rec:  running0,
			pods: []JobPod{func() JobPod { p := running(0); p.Restarts = 1; return p }()}, now: t0,
			wantDelete: []string{"j-abcde-0"}, wantCond: JobFailed, wantReason: ReasonBackoffLimitExceeded},
		{name: "before activeDeadlineSeconds: wake at the deadline",
			job: testJob(func(s *batchv1.JobSpec) { s.ActiveDeadlineSeconds = ptr(int64(60)) }),
			rec: running0, pods: []JobPod{running(0)}, now: at(30 * time.Second),
			wantWake: at(60 * time.Second), wantActive: 1},
		{name: "activeDeadlineSeconds passed: DeadlineExceeded",
			job: testJob(func(s *batchv1.JobSpec) { s.ActiveDeadlineSeconds = ptr(int64(60)) }),
			rec: running0, pods: []JobPod{running(0)}, now: at(60 * time.Second),
			wantDelete: []string{"j-abcde-0"}, wantCond: JobFailed, wantReason: ReasonDeadlineExceeded},
		{name: "TTL: pods kept until it passes",
			job: testJob(func(s *batchv1.JobSpec) { s.TTLSecondsAfterFinished = ptr(int32(100)) }),
			rec: running0, pods: []JobPod{pod(0, PodSucceeded)}, now: at(10 * time.Second),
			wantCond: JobComplete, wantExpire: at(110 * time.Second), wantWake: at(110 * time.Second)},
		{name: "TTL passed: every pod goes, the record stays",
			job: testJob(func(s *batchv1.JobSpec) { s.TTLSecondsAfterFinished = ptr(int32(100)) }),
			rec: rec(func(r *JobRecord) {
				r.Created, r.Succeeded, r.Condition, r.FinishTime = 1, 1, JobComplete, at(10*time.Second)
			}),
			pods: []JobPod{pod(0, PodSucceeded)}, now: at(110 * time.Second),
			wantCond: JobComplete, wantDelete: []string{"j-abcde-0"}, wantExpire: at(110 * time.Second), wantExpired: true},
		{name: "TTL 0: expired as it finishes",
			job: testJob(func(s *batchv1.JobSpec) { s.TTLSecondsAfterFinished = ptr(int32(0)) }),
			rec: running0, pods: []JobPod{pod(0, PodSucceeded)}, now: t0,
			wantCond: JobComplete, wantDelete: []string{"j-abcde-0"}, wantExpire: t0, wantExpired: true},
		{name: "work queue: a success stops new pods; the rest run out",
			job:  testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = nil, ptr(int32(3)) }),
			rec:  rec(func(r *JobRecord) { r.Created, r.Active = 3, active(0, 1, 2) }),
			pods: []JobPod{pod(0, PodSucceeded), running(1), pod(2, PodFailed)}, now: t0,
			wantActive: 1},
		{name: "work queue: complete once a pod succeeded and none runs",
			job:  testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = nil, ptr(int32(3)) }),
			rec:  rec(func(r *JobRecord) { r.Created, r.Active, r.Succeeded = 3, active(1), 1 }),
			pods: []JobPod{pod(0, PodSucceeded), pod(1, PodSucceeded), pod(2, PodFailed)}, now: t0,
			wantCond: JobComplete},
		{name: "work queue: starts parallelism pods",
			job: testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = nil, ptr(int32(2)) }), now: t0,
			wantCreate: []string{"j-abcde-0", "j-abcde-1"}, wantActive: 2},
		{name: "a pod the record lists but nobody reports yet counts as active",
			job: testJob(nil), rec: running0, now: t0, wantActive: 1},
		{name: "a pod created beyond the record is adopted",
			job:  testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = ptr(int32(2)), ptr(int32(2)) }),
			rec:  rec(func(r *JobRecord) { r.Created, r.Active = 1, active(0) }),
			pods: []JobPod{running(0), running(1)}, now: t0, wantActive: 2,
			wantRecord: func(t *testing.T, r JobRecord) {
				if r.Created != 2 || !reflect.DeepEqual(r.Active, active(0, 1)) {
					t.Errorf("record %+v", r)
				}
			}},
		{name: "a lost pod counts as failed; when its host returns it is deleted",
			job:  testJob(nil),
			rec:  rec(func(r *JobRecord) { r.Created, r.Active, r.Failed = 2, active(1), 1 }),
			pods: []JobPod{running(0), running(1)}, now: t0,
			wantDelete: []string{"j-abcde-0"}, wantActive: 1},
		{name: "an Indexed pod with an index out of range is deleted",
			job: testJob(func(s *batchv1.JobSpec) {
				s.Completions, s.CompletionMode = ptr(int32(2)), ptr(batchv1.IndexedCompletion)
			}),
			rec:  rec(func(r *JobRecord) { r.Created, r.Active = 1, []JobPodRecord{{Name: "j-abcde-0-0", Index: 0}} }),
			pods: []JobPod{ipod(0, 0, PodRunning), ipod(1, 7, PodSucceeded)}, now: t0,
			wantDelete: []string{"j-abcde-7-1"}, wantActive: 1},
		{name: "lowered parallelism deletes pending before ready pods",
			job: testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = ptr(int32(5)), ptr(int32(1)) }),
			rec: rec(func(r *JobRecord) { r.Created, r.Active = 3, active(0, 1, 2) }),
			pods: []JobPod{pod(0, PodPending), running(1),
				func() JobPod { p := running(2); p.Ready = true; return p }()},
			now: t0, wantDelete: []string{"j-abcde-1", "j-abcde-0"}, wantActive: 1},
		{name: "podFailurePolicy FailJob",
			job: testJob(func(s *batchv1.JobSpec) {
				s.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
					Action:      batchv1.PodFailurePolicyActionFailJob,
					OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
				}}}
			}),
			rec: running0, pods: []JobPod{failed(0, 42)}, now: t0,
			wantCond: JobFailed, wantReason: ReasonPodFailurePolicy,
			wantEvent: "Job j failed: PodFailurePolicy: pod j-abcde-0 failed: container c exited 42; container c exited 42, podFailurePolicy rule 0 says FailJob"},
		{name: "podFailurePolicy Ignore: not counted, replaced at once",
			job: testJob(func(s *batchv1.JobSpec) {
				s.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
					Action:      batchv1.PodFailurePolicyActionIgnore,
					OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{143}},
				}}}
			}),
			rec: running0, pods: []JobPod{failed(0, 143)}, now: t0,
			wantCreate: []string{"j-abcde-1"}, wantActive: 1,
			wantRecord: func(t *testing.T, r JobRecord) {
				if r.Failed != 0 || r.FailuresSinceSuccess != 0 {
					t.Errorf("record %+v", r)
				}
			}},
		{name: "podFailurePolicy: a lost pod is a disruption",
			job: testJob(func(s *batchv1.JobSpec) {
				s.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
					Action:          batchv1.PodFailurePolicyActionIgnore,
					OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
				}}}
			}),
			rec: running0, pods: []JobPod{pod(0, PodLost)}, now: t0,
			wantCreate: []string{"j-abcde-1"}, wantActive: 1, wantEvent: "pod j-abcde-0 was lost with its host; ignored (pod lost with its host (DisruptionTarget), podFailurePolicy rule 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := SyncJob(tc.job, tc.rec, tc.pods, tc.now)
			if got := names(d.Create); !slices.Equal(got, tc.wantCreate) {
				t.Errorf("create %v, want %v", got, tc.wantCreate)
			}
			if got := deleted(d.Delete); !slices.Equal(got, tc.wantDelete) {
				t.Errorf("delete %v, want %v", got, tc.wantDelete)
			}
			if d.Record.Condition != tc.wantCond || tc.wantReason != "" && d.Record.Reason != tc.wantReason {
				t.Errorf("condition %q %q (%s), want %q %q", d.Record.Condition, d.Record.Reason, d.Record.Message, tc.wantCond, tc.wantReason)
			}
			if !d.Wake.Equal(tc.wantWake) {
				t.Errorf("wake %s, want %s", d.Wake, tc.wantWake)
			}
			if !d.ExpireAt.Equal(tc.wantExpire) || d.Expired != tc.wantExpired {
				t.Errorf("expire %s %v, want %s %v", d.ExpireAt, d.Expired, tc.wantExpire, tc.wantExpired)
			}
			if d.Active != tc.wantActive {
				t.Errorf("active %d, want %d", d.Active, tc.wantActive)
			}
			if tc.wantEvent != "" && !slices.Contains(d.Events, tc.wantEvent) {
				t.Errorf("events %q, want %q among them", d.Events, tc.wantEvent)
			}
			if tc.wantRecord != nil {
				tc.wantRecord(t, d.Record)
			}
		})
	}
}

// rec returns a record of the test Job's run started at t0, changed by mut.
func rec(mut func(*JobRecord)) JobRecord {
	r := JobRecord{Identity: testID, StartTime: t0}
	mut(&r)
	return r
}

func TestSyncJobIndexed(t *testing.T) {
	job := testJob(func(s *batchv1.JobSpec) {
		s.Completions, s.Parallelism = ptr(int32(3)), ptr(int32(2))
		s.CompletionMode = ptr(batchv1.IndexedCompletion)
	})
	d := SyncJob(job, JobRecord{}, nil, t0)
	if got := names(d.Create); !slices.Equal(got, []string{"j-abcde-0-0", "j-abcde-1-1"}) {
		t.Fatalf("create %v", got)
	}
	c := d.Create[1]
	if c.Index != 1 || c.Hostname != "j-1" || !reflect.DeepEqual(c.Env, []corev1.EnvVar{{Name: "JOB_COMPLETION_INDEX", Value: "1"}}) {
		t.Errorf("pod to create %+v", c)
	}
	// Index 1 succeeds, index 0 fails: the next pods wait for the back-off.
	d = SyncJob(job, d.Record, []JobPod{ipod(0, 0, PodFailed), ipod(1, 1, PodSucceeded)}, at(time.Second))
	if len(d.Create) != 0 || !d.Wake.Equal(at(11*time.Second)) {
		t.Fatalf("create %v, wake %s", names(d.Create), d.Wake)
	}
	if d.Record.CompletedIndexes.String() != "1" || d.Record.Succeeded != 1 || d.Record.Failed != 1 {
		t.Errorf("record %+v", d.Record)
	}
	pods := []JobPod{ipod(0, 0, PodFailed), ipod(1, 1, PodSucceeded)}
	d = SyncJob(job, d.Record, pods, at(11*time.Second))
	if got := names(d.Create); !slices.Equal(got, []string{"j-abcde-0-2", "j-abcde-2-3"}) {
		t.Fatalf("create %v", got)
	}
	// A second success of an index (a pod adopted) does not count twice.
	pods = append(pods, ipod(2, 0, PodRunning), ipod(3, 2, PodSucceeded), ipod(4, 2, PodSucceeded))
	d = SyncJob(job, d.Record, pods, at(12*time.Second))
	if d.Record.Succeeded != 2 || d.Record.CompletedIndexes.String() != "1-2" || d.Record.Finished() || d.Record.Created != 5 {
		t.Errorf("record %+v", d.Record)
	}
	if len(d.Create) != 0 {
		t.Errorf("create %v", names(d.Create))
	}
	pods[2].Phase = PodSucceeded
	d = SyncJob(job, d.Record, pods, at(13*time.Second))
	if d.Record.Condition != JobComplete || d.Record.CompletedIndexes.String() != "0-2" {
		t.Errorf("record %+v", d.Record)
	}
}

func TestSyncJobDoesNotChangeItsInput(t *testing.T) {
	r := rec(func(r *JobRecord) { r.Created, r.Active = 2, active(0, 1) })
	r.CompletedIndexes.Add(5)
	before, _ := json.Marshal(r)
	job := testJob(func(s *batchv1.JobSpec) { s.Completions, s.Parallelism = ptr(int32(3)), ptr(int32(2)) })
	SyncJob(job, r, []JobPod{pod(0, PodSucceeded), failed(1, 1)}, t0)
	if after, _ := json.Marshal(r); string(after) != string(before) {
		t.Errorf("record changed:\n%s\n%s", before, after)
	}
}

func TestJobIdentity(t *testing.T) {
	base := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "migrate"}, Spec: testJob(nil).Spec}
	id := func(mut func(*batchv1.Job)) string {
		j := base.DeepCopy()
		mut(j)
		got, err := JobOf(j)
		if err != nil {
			t.Fatal(err)
		}
		return got.Identity
	}
	same := id(func(*batchv1.Job) {})
	if !strings.HasPrefix(same, "sha256:") || len(same) != len("sha256:")+64 {
		t.Fatalf("identity %q", same)
	}
	for _, tc := range []struct {
		name    string
		mut     func(*batchv1.Job)
		changes bool
	}{
		{"nothing", func(*batchv1.Job) {}, false},
		{"parallelism", func(j *batchv1.Job) { j.Spec.Parallelism = ptr(int32(4)) }, false},
		{"backoffLimit", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr(int32(1)) }, false},
		{"activeDeadlineSeconds", func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr(int64(9)) }, false},
		{"ttlSecondsAfterFinished", func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr(int32(9)) }, false},
		{"podFailurePolicy", func(j *batchv1.Job) { j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{} }, false},
		{"Job labels", func(j *batchv1.Job) { j.Labels = map[string]string{"a": "b"} }, false},
		{"explicit NonIndexed", func(j *batchv1.Job) { j.Spec.CompletionMode = ptr(batchv1.NonIndexedCompletion) }, false},
		{"name", func(j *batchv1.Job) { j.Name = "other" }, true},
		{"namespace", func(j *batchv1.Job) { j.Namespace = "prod" }, true},
		{"image", func(j *batchv1.Job) { j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "x:2"}} }, true},
		{"template annotation", func(j *batchv1.Job) { j.Spec.Template.Annotations = map[string]string{"kelpie.dev/run": "2"} }, true},
		{"completions", func(j *batchv1.Job) { j.Spec.Completions = ptr(int32(2)) }, true},
		{"Indexed", func(j *batchv1.Job) { j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion) }, true},
	} {
		if got := id(tc.mut) != same; got != tc.changes {
			t.Errorf("%s: identity changed %v, want %v", tc.name, got, tc.changes)
		}
	}
}

func TestJobPodName(t *testing.T) {
	for _, tc := range []struct {
		seq, index int
		want       string
	}{
		{0, -1, "backup-abcde-0"},
		{12, -1, "backup-abcde-12"},
		{3, 2, "backup-abcde-2-3"},
	} {
		if got := JobPodName("backup", "sha256:abcdef", tc.seq, tc.index); got != tc.want {
			t.Errorf("JobPodName(%d, %d) = %q, want %q", tc.seq, tc.index, got, tc.want)
		}
	}
}

func TestClassifyFailure(t *testing.T) {
	in := func(codes ...int32) *batchv1.PodFailurePolicyOnExitCodesRequirement {
		return &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: codes}
	}
	notIn := func(codes ...int32) *batchv1.PodFailurePolicyOnExitCodesRequirement {
		return &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: codes}
	}
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: func() *batchv1.PodFailurePolicyOnExitCodesRequirement {
			r := in(1)
			r.ContainerName = ptr("sidecar")
			return r
		}()},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: in(42, 43)},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: in(1)},
		{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: notIn(1, 2, 3)},
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}},
	}}
	for _, tc := range []struct {
		name  string
		phase PodPhase
		exits []ContainerExit
		want  batchv1.PodFailurePolicyAction
	}{
		{"container name restricts", PodFailed, []ContainerExit{{"sidecar", 1}}, batchv1.PodFailurePolicyActionIgnore},
		{"other container", PodFailed, []ContainerExit{{"main", 1}}, batchv1.PodFailurePolicyActionCount},
		{"first rule that matches wins", PodFailed, []ContainerExit{{"main", 43}}, batchv1.PodFailurePolicyActionFailJob},
		{"exit 0 is left out", PodFailed, []ContainerExit{{"init", 0}, {"main", 2}}, batchv1.PodFailurePolicyActionCount},
		{"NotIn", PodFailed, []ContainerExit{{"main", 7}}, batchv1.PodFailurePolicyActionIgnore},
		{"any container may match", PodFailed, []ContainerExit{{"a", 2}, {"b", 42}}, batchv1.PodFailurePolicyActionFailJob},
		{"lost pod", PodLost, nil, batchv1.PodFailurePolicyActionIgnore},
		{"no match counts", PodFailed, []ContainerExit{{"main", 3}}, batchv1.PodFailurePolicyActionCount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := JobPod{Phase: tc.phase, Exits: tc.exits}
			if got := classifyFailure(policy, &p).action; got != tc.want {
				t.Errorf("action %s, want %s", got, tc.want)
			}
		})
	}
	if got := classifyFailure(nil, &JobPod{Phase: PodFailed}).action; got != batchv1.PodFailurePolicyActionCount {
		t.Errorf("no policy: %s", got)
	}
}

func TestIndexes(t *testing.T) {
	for _, tc := range []struct {
		add  []int
		want string
	}{
		{nil, ""},
		{[]int{3}, "3"},
		{[]int{0, 1, 2, 5, 7, 8, 9}, "0-2,5,7-9"},
		{[]int{9, 1, 0, 1, 4, 3, 2}, "0-4,9"},
	} {
		var s Indexes
		for _, i := range tc.add {
			s.Add(i)
		}
		if s.String() != tc.want {
			t.Errorf("%v: %q, want %q", tc.add, s.String(), tc.want)
		}
		back, err := ParseIndexes(tc.want)
		if err != nil || !reflect.DeepEqual(back.List(), s.List()) {
			t.Errorf("parse %q: %v %v", tc.want, back.List(), err)
		}
		data, _ := json.Marshal(s)
		var fromJSON Indexes
		if err := json.Unmarshal(data, &fromJSON); err != nil || fromJSON.String() != tc.want {
			t.Errorf("JSON %s: %q %v", data, fromJSON.String(), err)
		}
	}
	for _, bad := range []string{"a", "1-", "3-1", "-1", "1,,2", "0-99999999"} {
		if _, err := ParseIndexes(bad); err == nil {
			t.Errorf("ParseIndexes(%q) accepted", bad)
		}
	}
}

// TestJobRecordJSON checks the record survives the cluster state's JSON.
func TestJobRecordJSON(t *testing.T) {
	r := rec(func(r *JobRecord) {
		r.Created, r.Active, r.Succeeded, r.Failed = 4, active(3), 2, 1
		r.CompletedIndexes.Add(0)
		r.CompletedIndexes.Add(1)
		r.LastFailure, r.FailuresSinceSuccess = at(time.Minute), 1
	})
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back JobRecord
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip:\n%+v\n%+v", back, r)
	}
}

// TestSyncJobProperty runs random Jobs against pods that succeed, fail or
// get lost at random, with the record passed from sync to sync (and
// sometimes the same sync computed twice, as by two leaders), and checks:
// pods never exceed parallelism, names are never reused, a sync repeated
// on its own output creates nothing, the Job always finishes, and once
// finished it never creates a pod again.
func TestSyncJobProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		completions := 1 + rng.IntN(6)
		parallelism := 1 + rng.IntN(4)
		indexed := rng.IntN(2) == 0
		job := testJob(func(s *batchv1.JobSpec) {
			s.Completions, s.Parallelism, s.BackoffLimit = ptr(int32(completions)), ptr(int32(parallelism)), ptr(int32(rng.IntN(5)))
			if indexed {
				s.CompletionMode = ptr(batchv1.IndexedCompletion)
			}
		})
		var (
			r     JobRecord
			pods  []JobPod
			seen  = map[string]bool{}
			now   = t0
			label = fmt.Sprintf("trial %d (completions %d, parallelism %d, indexed %v)", trial, completions, parallelism, indexed)
		)
		for step := 0; ; step++ {
			if step > 500 {
				t.Fatalf("%s: not finished after %d steps: %+v", label, step, r)
			}
			d := SyncJob(job, r, pods, now)
			if twice := SyncJob(job, r, pods, now); !reflect.DeepEqual(twice, d) {
				t.Fatalf("%s: two syncs of the same inputs differ", label)
			}
			gone := map[string]bool{}
			for _, x := range d.Delete {
				gone[x.Name] = true
			}
			var next []JobPod
			for _, p := range pods {
				if !gone[p.Name] {
					next = append(next, p)
				}
			}
			for _, c := range d.Create {
				if seen[c.Name] {
					t.Fatalf("%s: name %s reused", label, c.Name)
				}
				seen[c.Name] = true
				next = append(next, JobPod{Name: c.Name, Identity: testID, Seq: c.Seq, Index: c.Index, Phase: PodPending})
			}
			pods, r = next, d.Record
			if again := SyncJob(job, r, pods, now); len(again.Create) > 0 {
				t.Fatalf("%s: a sync on its own output creates %v", label, names(again.Create))
			}
			running := 0
			for _, p := range pods {
				if !p.Phase.finished() {
					running++
				}
			}
			if running > parallelism {
				t.Fatalf("%s: %d pods run, parallelism %d", label, running, parallelism)
			}
			if r.Succeeded > completions {
				t.Fatalf("%s: %d succeeded of %d", label, r.Succeeded, completions)
			}
			if r.Finished() {
				later := SyncJob(job, r, pods, now.Add(time.Hour))
				if len(later.Create) > 0 || later.Record.Condition != r.Condition {
					t.Fatalf("%s: a finished Job runs again", label)
				}
				break
			}
			// Pods move on at random.
			for i := range pods {
				switch p := &pods[i]; p.Phase {
				case PodPending:
					p.Phase = PodRunning
				case PodRunning:
					switch rng.IntN(6) {
					case 0, 1, 2:
						p.Phase = PodSucceeded
					case 3:
						p.Phase = PodFailed
						p.Exits = []ContainerExit{{Name: "c", ExitCode: 1}}
					case 4:
						p.Phase = PodLost
					}
				}
			}
			now = now.Add(time.Duration(rng.IntN(400)) * time.Second)
		}
	}
}
