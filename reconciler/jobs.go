package reconciler

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/kelpie-dev/kelpie/specs"
	"github.com/kelpie-dev/kelpie/workload"
)

// JobRecords is the durable state of the Job controller (SyncJobs): the
// recorded outcome of every Job of the manifests and the schedule and Jobs
// of every CronJob. It is a JSON value: a single host keeps it in its
// state dir, a cluster in its (term-fenced) cluster state. What it says
// is what makes a finished Job never run again and a CronJob tick run
// once, whatever happens to agents and commits.
type JobRecords struct {
	// Jobs maps "namespace/name" (JoinName) of each Job of the manifests
	// to the record of its run.
	Jobs map[string]workload.JobRecord `json:"jobs,omitempty"`
	// CronJobs maps "namespace/name" of each CronJob to its record.
	CronJobs map[string]CronJobRecord `json:"cronJobs,omitempty"`
}

// CronJobRecord is what the controller keeps of one CronJob: its
// schedule's record and the Jobs it created that still exist.
type CronJobRecord struct {
	Schedule workload.CronRecord `json:"schedule"`
	// Jobs are the CronJob's Jobs, oldest first; the history limits (and
	// concurrencyPolicy Replace) delete them.
	Jobs []CronJobRun `json:"jobs,omitempty"`
}

// CronJobRun is one Job a CronJob created: for a tick, or by `kelpie cron
// trigger` (Manual). Its pods run the CronJob's current job template.
type CronJobRun struct {
	Name        string             `json:"name"`
	ScheduledAt time.Time          `json:"scheduledAt"`
	Manual      bool               `json:"manual,omitempty"`
	Record      workload.JobRecord `json:"record"`
}

// Clone returns a deep copy of r.
func (r JobRecords) Clone() JobRecords {
	out := JobRecords{Jobs: maps.Clone(r.Jobs), CronJobs: make(map[string]CronJobRecord, len(r.CronJobs))}
	for k, v := range r.CronJobs {
		v.Jobs = slices.Clone(v.Jobs)
		out.CronJobs[k] = v
	}
	if len(out.CronJobs) == 0 {
		out.CronJobs = nil
	}
	return out
}

// JobsInput is what SyncJobs decides from.
type JobsInput struct {
	// State is the validated manifests: their Jobs and CronJobs.
	State *specs.DesiredState
	// Records are the records as last stored (the zero value at first).
	Records JobRecords
	// Pods are the observed pods; those owned by a Job (Owner kind Job)
	// are the Jobs' pods. In a cluster, the pods of every host.
	Pods []ActualPod
	// Now is the current time.
	Now time.Time
	// Host, when set, is the host that runs every pod: a Job whose
	// nodeSelector does not match it runs nothing (a Notice says so). Nil
	// checks no nodeSelector (a cluster's scheduler places the pods).
	Host *Host
}

// JobsResult is what SyncJobs decided.
type JobsResult struct {
	// Records are the new records: store them (durably, fenced in a
	// cluster) before creating the pods of Create.
	Records JobRecords
	// Pods are the Jobs' pods that should exist: the ones to create
	// (Create lists their names) and the existing ones to keep, finished
	// ones included (their logs stay until ttlSecondsAfterFinished).
	Pods []Pod
	// Create names the pods of Pods that do not exist yet.
	Create []string
	// Remove lists the Jobs' pods to delete.
	Remove []Removal
	// Wake is when SyncJobs must run again although nothing was observed
	// (a back-off, deadline or TTL ends, a CronJob tick is due); zero for
	// never.
	Wake time.Time
	// Events are the transitions of this step, one log line each.
	Events []JobEvent
	// Jobs and CronJobs are their status, sorted by namespace and name.
	Jobs     []JobStatus
	CronJobs []CronJobStatus
	// Notices report Jobs and CronJobs that run nothing here, and why.
	Notices []Notice
}

// JobEvent is one transition of a Job or CronJob.
type JobEvent struct {
	// Kind is Job or CronJob; Namespace and Name say which.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Message   string `json:"message"`
}

// String formats the event: "Job default/backup: pod … succeeded (1/3 succeeded)".
func (e JobEvent) String() string {
	return e.Kind + " " + JoinName(e.Namespace, e.Name) + ": " + e.Message
}

// JobStatus is the state of one Job, for status, ps and metrics.
type JobStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// CronJob names the CronJob that made the Job; "" for a Job of the
	// manifests.
	CronJob string `json:"cronJob,omitempty"`
	// Condition is Complete, Failed or "" while the Job runs; Reason and
	// Message say why it ended.
	Condition string `json:"condition,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"`
	// Completions is spec.completions (0 for a work queue).
	Completions int `json:"completions"`
	Succeeded   int `json:"succeeded"`
	Failed      int `json:"failed"`
	Active      int `json:"active"`
	Ready       int `json:"ready"`
	// CompletedIndexes are an Indexed Job's completed indexes: "0-2,5".
	CompletedIndexes string    `json:"completedIndexes,omitempty"`
	StartTime        time.Time `json:"startTime,omitzero"`
	FinishTime       time.Time `json:"finishTime,omitzero"`
	// ExpireAt is when a finished Job's pods and logs go
	// (ttlSecondsAfterFinished).
	ExpireAt time.Time `json:"expireAt,omitzero"`
}

// CronJobStatus is the state of one CronJob.
type CronJobStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Schedule  string `json:"schedule"`
	Suspended bool   `json:"suspended,omitempty"`
	// LastScheduleTime is the latest tick whose Job was made; zero before.
	LastScheduleTime time.Time `json:"lastScheduleTime,omitzero"`
	// NextScheduleTime is the next tick; zero when suspended.
	NextScheduleTime time.Time `json:"nextScheduleTime,omitzero"`
	// Active names the CronJob's Jobs that run.
	Active []string `json:"active,omitempty"`
}

// SyncJobs runs one step of the Job and CronJob controllers: from the
// manifests' Jobs and CronJobs, their records and their observed pods at
// in.Now, it decides (with workload.SyncJob and workload.ScheduleCron)
// the pods each Job runs, the pods to delete, the new records and when to
// run again. It is pure: no I/O, no clock; the same input gives the same
// result on every host and every leader.
//
//   - A Job of the manifests runs once per identity (workload.JobIdentity):
//     its record says whether it finished; a Job that left the manifests
//     loses its record (it runs again if it comes back).
//   - A CronJob's ticks each make one Job (workload.JobFromCron), kept in
//     the CronJob's record with the Job's own record; a CronJob that left
//     the manifests loses its record and Jobs.
//   - Pods are named by workload.JobPodName and owned by Owner{Job, name}
//     (a CronJob's by its tick's Job); an Indexed Job's pods get
//     JOB_COMPLETION_INDEX in every container and the hostname NAME-INDEX.
//
// The caller stores Records, then runs Pods and deletes Remove (the
// agent adds them to its Desired with WithJobs and plans as usual).
func SyncJobs(in JobsInput) JobsResult {
	c := &jobController{in: in, byOwner: map[string][]*ActualPod{}}
	c.out.Records = JobRecords{}
	for i := range in.Pods {
		p := &in.Pods[i]
		if p.Owner.Kind == specs.KindJob {
			key := JoinName(p.Namespace, p.Owner.Name)
			c.byOwner[key] = append(c.byOwner[key], p)
		}
	}
	if in.State != nil {
		for _, obj := range in.State.Objects {
			switch o := obj.Obj.(type) {
			case *batchv1.Job:
				c.job(obj, o)
			case *batchv1.CronJob:
				c.cronJob(obj, o)
			}
		}
	}
	r := &c.out
	sort.Slice(r.Pods, func(i, j int) bool {
		return NamespacedLess(r.Pods[i].Namespace, r.Pods[i].Name, r.Pods[j].Namespace, r.Pods[j].Name)
	})
	sort.Slice(r.Remove, func(i, j int) bool {
		return NamespacedLess(r.Remove[i].Namespace, r.Remove[i].Name, r.Remove[j].Namespace, r.Remove[j].Name)
	})
	sort.Strings(r.Create)
	return c.out
}

// jobController holds one SyncJobs.
type jobController struct {
	in JobsInput
	// byOwner maps "namespace/job name" to the Job's observed pods.
	byOwner map[string][]*ActualPod
	out     JobsResult
}

// wake asks for a step at t at the latest.
func (c *jobController) wake(t time.Time) {
	if !t.IsZero() && (c.out.Wake.IsZero() || t.Before(c.out.Wake)) {
		c.out.Wake = t
	}
}

// notice reports an object that runs nothing.
func (c *jobController) notice(obj *specs.Object, msg string) {
	c.out.Notices = append(c.out.Notices, Notice{APIVersion: obj.APIVersion, Key: obj.Key(), Message: msg})
}

// event logs a transition.
func (c *jobController) event(kind, namespace, name, msg string) {
	c.out.Events = append(c.out.Events, JobEvent{Kind: kind, Namespace: namespace, Name: name, Message: msg})
}

// placeable reports whether a template's nodeSelector lets it run on
// in.Host (always without one), with a Notice when not.
func (c *jobController) placeable(obj *specs.Object, sel map[string]string) bool {
	h := c.in.Host
	if h == nil || selectorMatches(sel, hostLabels(*h)) {
		return true
	}
	c.notice(obj, fmt.Sprintf("nodeSelector {%s} does not match host %s; not run", formatSelector(sel), podNameHost(h.Name)))
	return false
}

// job runs one Job of the manifests.
func (c *jobController) job(obj *specs.Object, o *batchv1.Job) {
	if !c.placeable(obj, o.Spec.Template.Spec.NodeSelector) {
		return
	}
	j, err := workload.JobOf(o)
	if err != nil {
		c.notice(obj, err.Error()+"; not run")
		return
	}
	key := JoinName(o.Namespace, o.Name)
	rec, ok := c.syncJob(obj, j, "", c.in.Records.Jobs[key])
	if !ok {
		return
	}
	if c.out.Records.Jobs == nil {
		c.out.Records.Jobs = map[string]workload.JobRecord{}
	}
	c.out.Records.Jobs[key] = rec
}

// jobStep is one Job's decision, not yet applied.
type jobStep struct {
	job  workload.Job
	obj  *specs.Object
	d    workload.JobDecision
	pods []workload.JobPod
}

// decideJob runs workload.SyncJob for j with its observed pods.
func (c *jobController) decideJob(obj *specs.Object, j workload.Job, rec workload.JobRecord) jobStep {
	var pods []workload.JobPod
	for _, a := range c.byOwner[JoinName(j.Namespace, j.Name)] {
		if p, ok := observeJobPod(j, a); ok {
			pods = append(pods, p)
		}
	}
	return jobStep{job: j, obj: obj, d: workload.SyncJob(j, rec, pods, c.in.Now), pods: pods}
}

// syncJob decides and applies one Job's step; cronJob names the CronJob
// that made it. It reports false when the Job's pods cannot be built
// (a Notice says why): its record is then left as it was.
func (c *jobController) syncJob(obj *specs.Object, j workload.Job, cronJob string, rec workload.JobRecord) (workload.JobRecord, bool) {
	st := c.decideJob(obj, j, rec)
	if !c.apply(st, cronJob) {
		return rec, false
	}
	return st.d.Record, true
}

// apply turns a Job's decision into pods, removals, events and status.
func (c *jobController) apply(st jobStep, cronJob string) bool {
	j, d := &st.job, &st.d
	pods := make([]Pod, 0, len(d.Create)+len(st.pods))
	deleted := map[string]bool{}
	for _, del := range d.Delete {
		deleted[del.Name] = true
	}
	// The pods to keep: those observed of this run (finished ones too,
	// until the TTL) and those the record lists as active but that are not
	// observed (their creation failed or is on its way: made again).
	keep := map[string]int{}
	for _, p := range st.pods {
		if !deleted[p.Name] && p.Identity == j.Identity {
			keep[p.Name] = p.Index
		}
	}
	creating := map[string]bool{}
	for _, cr := range d.Create {
		creating[cr.Name] = true
	}
	for _, r := range d.Record.Active {
		if !deleted[r.Name] && !creating[r.Name] {
			keep[r.Name] = r.Index
		}
	}
	for _, name := range slices.Sorted(maps.Keys(keep)) {
		pod, err := c.buildJobPod(st.obj, j, name, keep[name])
		if err != nil {
			c.notice(st.obj, fmt.Sprintf("pod %s: %v; not run", name, err))
			return false
		}
		pods = append(pods, pod)
	}
	var created []string
	for _, cr := range d.Create {
		pod, err := c.buildJobPod(st.obj, j, cr.Name, cr.Index)
		if err != nil {
			c.notice(st.obj, fmt.Sprintf("pod %s: %v; not run", cr.Name, err))
			return false
		}
		pods = append(pods, pod)
		created = append(created, JoinName(pod.Namespace, pod.Name))
	}
	c.out.Pods = append(c.out.Pods, pods...)
	c.out.Create = append(c.out.Create, created...)
	for _, del := range d.Delete {
		c.out.Remove = append(c.out.Remove, Removal{Namespace: j.Namespace, Name: del.Name, Reason: del.Reason})
	}
	for _, e := range d.Events {
		c.event(specs.KindJob, j.Namespace, j.Name, e)
	}
	c.wake(d.Wake)
	rec := d.Record
	s := JobStatus{
		Namespace: j.Namespace, Name: j.Name, CronJob: cronJob,
		Condition: string(rec.Condition), Reason: rec.Reason, Message: rec.Message,
		Succeeded: rec.Succeeded, Failed: rec.Failed, Active: d.Active, Ready: d.Ready,
		CompletedIndexes: rec.CompletedIndexes.String(),
		StartTime:        rec.StartTime, FinishTime: rec.FinishTime, ExpireAt: d.ExpireAt,
	}
	if n := j.Spec.Completions; n != nil {
		s.Completions = int(*n)
	}
	c.out.Jobs = append(c.out.Jobs, s)
	return true
}

// removeJobPods deletes every observed pod of the Job namespace/name.
func (c *jobController) removeJobPods(namespace, name, reason string) {
	for _, a := range c.byOwner[JoinName(namespace, name)] {
		c.out.Remove = append(c.out.Remove, Removal{Namespace: a.Namespace, Name: a.Name, Reason: reason})
	}
}

// cronJob runs one CronJob: its Jobs' steps, then its schedule.
func (c *jobController) cronJob(obj *specs.Object, o *batchv1.CronJob) {
	if !c.placeable(obj, o.Spec.JobTemplate.Spec.Template.Spec.NodeSelector) {
		return
	}
	key := JoinName(o.Namespace, o.Name)
	cr := c.in.Records.CronJobs[key]
	steps := make([]jobStep, len(cr.Jobs))
	runs := make([]workload.CronRun, len(cr.Jobs))
	for i, run := range cr.Jobs {
		j := workload.JobFromCron(o, workload.CronTick{Name: run.Name, ScheduledAt: run.ScheduledAt, Manual: run.Manual})
		steps[i] = c.decideJob(obj, j, run.Record)
		runs[i] = workload.CronRun{Name: run.Name, ScheduledAt: run.ScheduledAt, Manual: run.Manual, Condition: steps[i].d.Record.Condition}
	}
	d, err := workload.ScheduleCron(o, cr.Schedule, runs, c.in.Now)
	if err != nil {
		c.notice(obj, err.Error()+"; not run")
		return
	}
	for _, e := range d.Events {
		c.event(specs.KindCronJob, o.Namespace, o.Name, e)
	}
	c.wake(d.Wake)
	gone := map[string]string{}
	for _, del := range d.Delete {
		gone[del.Name] = del.Reason
	}
	next := CronJobRecord{Schedule: d.Record}
	status := CronJobStatus{
		Namespace: o.Namespace, Name: o.Name, Schedule: o.Spec.Schedule, Suspended: isTrue(o.Spec.Suspend),
		LastScheduleTime: d.Record.LastScheduleTime, NextScheduleTime: d.Wake,
	}
	for i, run := range cr.Jobs {
		if why, ok := gone[run.Name]; ok {
			c.event(specs.KindCronJob, o.Namespace, o.Name, fmt.Sprintf("Job %s deleted: %s", run.Name, why))
			c.removeJobPods(o.Namespace, run.Name, "its Job "+run.Name+" was deleted: "+why)
			continue
		}
		if c.apply(steps[i], o.Name) {
			run.Record = steps[i].d.Record
		}
		next.Jobs = append(next.Jobs, run)
	}
	if t := d.Run; t != nil {
		run := CronJobRun{Name: t.Name, ScheduledAt: t.ScheduledAt, Manual: t.Manual}
		j := workload.JobFromCron(o, *t)
		run.Record, _ = c.syncJob(obj, j, o.Name, workload.JobRecord{})
		next.Jobs = append(next.Jobs, run)
	}
	for _, run := range next.Jobs {
		if !run.Record.Finished() {
			status.Active = append(status.Active, run.Name)
		}
	}
	if c.out.Records.CronJobs == nil {
		c.out.Records.CronJobs = map[string]CronJobRecord{}
	}
	c.out.Records.CronJobs[key] = next
	c.out.CronJobs = append(c.out.CronJobs, status)
}

// TriggerCronJob adds to records the Job `kelpie cron trigger` runs now
// from the CronJob namespace/name of state (workload.Trigger): the next
// SyncJobs creates its pods. It returns the new records and the Job's
// name; records is not changed.
func TriggerCronJob(state *specs.DesiredState, records JobRecords, namespace, name string, now time.Time) (JobRecords, string, error) {
	obj := state.Get(specs.Key{Kind: specs.KindCronJob, Namespace: namespace, Name: name})
	if obj == nil {
		return records, "", fmt.Errorf("trigger CronJob %s: %w", JoinName(namespace, name), ErrNoCronJob)
	}
	cj := obj.Obj.(*batchv1.CronJob)
	t := workload.Trigger(cj, now)
	out := records.Clone()
	key := JoinName(namespace, name)
	cr := out.CronJobs[key]
	for _, run := range cr.Jobs {
		if run.Name == t.Name {
			return records, "", fmt.Errorf("trigger CronJob %s: Job %s exists already; try again in a second", key, t.Name)
		}
	}
	if cr.Schedule.Since.IsZero() {
		cr.Schedule.Since = now
	}
	cr.Jobs = append(cr.Jobs, CronJobRun{Name: t.Name, ScheduledAt: t.ScheduledAt, Manual: true})
	if out.CronJobs == nil {
		out.CronJobs = map[string]CronJobRecord{}
	}
	out.CronJobs[key] = cr
	return out, t.Name, nil
}

// ErrNoCronJob is returned by TriggerCronJob for a CronJob the manifests
// do not have.
var ErrNoCronJob = errors.New("no such CronJob in the applied manifests")

// isTrue reports whether an optional flag is set and true.
func isTrue(b *bool) bool { return b != nil && *b }
