package workload

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Back-off before a Job creates pods to replace failed ones, as the
// Kubernetes Job controller's: 10 s after the first failure since the
// last success, doubling, at most 6 minutes.
const (
	JobBackoffInitial = 10 * time.Second
	JobBackoffMax     = 6 * time.Minute
)

// jobBackoff returns the wait after n failures in a row (n ≥ 1).
func jobBackoff(n int) time.Duration {
	d := JobBackoffInitial
	for i := 1; i < n; i++ {
		d *= 2
		if d >= JobBackoffMax {
			return JobBackoffMax
		}
	}
	return d
}

// SyncJob runs one step of the Job controller for job at now, from its
// record rec (the zero record for a Job never seen) and its observed pods,
// as the Kubernetes Job controller does:
//
//   - a record of another identity is an earlier template's: the run
//     starts anew, and that run's pods are deleted;
//   - each pod's outcome counts once, when it is first seen finished; a
//     failed or lost pod goes through the podFailurePolicy (FailJob fails
//     the Job, Ignore does not count it, Count counts it);
//   - the run fails (Failed) when failures exceed backoffLimit (with
//     restartPolicy OnFailure, the container restarts of running pods count
//     too: BackoffLimitExceeded), when activeDeadlineSeconds passes
//     (DeadlineExceeded) or when a FailJob rule matches (PodFailurePolicy);
//     it completes (Complete) when completions pods succeeded (every index
//     for an Indexed Job; with completions unset, when a pod succeeded and
//     none runs any more). A finished run deletes its running pods, keeps
//     the others until ttlSecondsAfterFinished, and never runs again;
//   - otherwise it keeps min(parallelism, what remains) pods running:
//     it creates the missing ones (the lowest pending indexes for an
//     Indexed Job), after a back-off when pods failed since the last
//     success, and deletes any beyond that.
//
// A pod of this run that rec does not list yet, with a sequence number
// from rec.Created on, is adopted (its creation outran the record); one
// with a lower number that runs although its outcome was counted (a lost
// pod whose host came back) is deleted. A pod rec lists that the caller
// does not report yet counts as active (its report is on its way).
// SyncJob is pure and deterministic: the same inputs give the same pods
// to create, under the same names, on every leader.
func SyncJob(job Job, rec JobRecord, pods []JobPod, now time.Time) JobDecision {
	s := jobSync{job: &job, now: now, byName: map[string]*JobPod{}}
	s.rec = cloneRecord(rec)
	s.sync(pods)
	return s.d
}

// jobSync is the state of one SyncJob.
type jobSync struct {
	job    *Job
	now    time.Time
	rec    JobRecord
	byName map[string]*JobPod
	// active are the records of the pods that run or wait to run, after
	// counting.
	active []JobPodRecord
	d      JobDecision
}

// cloneRecord copies a record so SyncJob never changes its input.
func cloneRecord(r JobRecord) JobRecord {
	r.Active = slices.Clone(r.Active)
	r.CompletedIndexes = Indexes{sorted: slices.Clone(r.CompletedIndexes.sorted)}
	return r
}

// eventf records one transition.
func (s *jobSync) eventf(format string, args ...any) {
	s.d.Events = append(s.d.Events, fmt.Sprintf(format, args...))
}

// deletePod asks for a pod to be deleted.
func (s *jobSync) deletePod(name, reason string) {
	s.d.Delete = append(s.d.Delete, PodDeletion{Name: name, Reason: reason})
}

// wake asks for a sync at t at the latest.
func (s *jobSync) wake(t time.Time) {
	if s.d.Wake.IsZero() || t.Before(s.d.Wake) {
		s.d.Wake = t
	}
}

func (s *jobSync) sync(pods []JobPod) {
	job := s.job
	if s.rec.Identity != job.Identity {
		if s.rec.Identity != "" {
			s.eventf("Job %s changed (%s → %s): runs anew", job.Name, shortID(s.rec.Identity), shortID(job.Identity))
		} else {
			s.eventf("Job %s started", job.Name)
		}
		s.rec = JobRecord{Identity: job.Identity, StartTime: s.now}
	}
	// Pods sorted by sequence number, so every list below is deterministic.
	sorted := slices.Clone(pods)
	slices.SortFunc(sorted, func(a, b JobPod) int { return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Name, b.Name)) })
	var mine []*JobPod
	for i := range sorted {
		p := &sorted[i]
		if p.Identity != job.Identity {
			s.deletePod(p.Name, "belongs to an earlier template of the Job")
			continue
		}
		s.byName[p.Name] = p
		mine = append(mine, p)
	}
	if s.rec.Finished() {
		s.finished(mine)
		return
	}
	s.adopt(mine)
	s.count(mine)
	if s.fail() || s.complete() {
		s.finished(mine)
		return
	}
	s.scale()
	if d := job.Spec.ActiveDeadlineSeconds; d != nil {
		s.wake(s.rec.StartTime.Add(time.Duration(*d) * time.Second))
	}
	s.d.Record = s.rec
	s.d.Active = len(s.active)
	for _, r := range s.active {
		if p := s.byName[r.Name]; p != nil && p.Ready {
			s.d.Ready++
		}
	}
}

// adopt lists in the record the pods of this run created beyond it.
func (s *jobSync) adopt(mine []*JobPod) {
	listed := map[string]bool{}
	for _, r := range s.rec.Active {
		listed[r.Name] = true
	}
	n, _ := s.completions()
	for _, p := range mine {
		if s.job.indexed() && (p.Index < 0 || p.Index >= n) {
			// Only labels changed by hand can say so.
			listed[p.Name] = true
			s.deletePod(p.Name, fmt.Sprintf("completion index %d out of range 0-%d", p.Index, n-1))
			continue
		}
		if p.Seq >= s.rec.Created && !listed[p.Name] {
			s.rec.Active = append(s.rec.Active, JobPodRecord{Name: p.Name, Seq: p.Seq, Index: p.Index})
			s.rec.Created = p.Seq + 1
			listed[p.Name] = true
		}
	}
	for _, p := range mine {
		if !listed[p.Name] && !p.Phase.finished() {
			s.deletePod(p.Name, "its outcome was counted already")
		}
	}
}

// count counts the outcome of the listed pods that finished, and leaves the
// others in s.active.
func (s *jobSync) count(mine []*JobPod) {
	policy := s.job.Spec.PodFailurePolicy
	for _, r := range s.rec.Active {
		p := s.byName[r.Name]
		if p == nil || !p.Phase.finished() {
			s.active = append(s.active, r)
			continue
		}
		switch p.Phase {
		case PodSucceeded:
			// A success ends the failure streak, unless a failure came as
			// late (as Kubernetes: "without other pods failing around then").
			if cmp.Or(p.FinishedAt, s.now).After(s.rec.LastFailure) {
				s.rec.FailuresSinceSuccess = 0
			}
			if r.Index < 0 {
				s.rec.Succeeded++
			} else {
				s.rec.CompletedIndexes.Add(r.Index)
				s.rec.Succeeded = s.rec.CompletedIndexes.Len()
			}
			s.eventf("pod %s succeeded (%s)", p.Name, s.progress())
		default:
			what := "failed"
			if p.Phase == PodLost {
				what = "was lost with its host"
			} else if c, ok := firstFailure(p.Exits); ok {
				what = fmt.Sprintf("failed: container %s exited %d", c.Name, c.ExitCode)
			}
			fa := classifyFailure(policy, p)
			if fa.action == batchv1.PodFailurePolicyActionIgnore {
				s.eventf("pod %s %s; ignored (%s)", p.Name, what, fa.why)
				continue
			}
			s.rec.Failed++
			s.rec.FailuresSinceSuccess++
			s.rec.LastFailure = cmp.Or(p.FinishedAt, s.now)
			if fa.action == batchv1.PodFailurePolicyActionFailJob && s.rec.Reason == "" {
				s.rec.Reason = ReasonPodFailurePolicy
				s.rec.Message = fmt.Sprintf("pod %s %s; %s says FailJob", p.Name, what, fa.why)
			}
			s.eventf("pod %s %s (%d of backoffLimit %d)", p.Name, what, s.rec.Failed, s.backoffLimit())
		}
	}
	s.rec.Active = slices.Clone(s.active)
}

// firstFailure returns the first container that exited non-zero.
func firstFailure(exits []ContainerExit) (ContainerExit, bool) {
	for _, c := range exits {
		if c.ExitCode != 0 {
			return c, true
		}
	}
	return ContainerExit{}, false
}

// backoffLimit returns spec.backoffLimit (6 when unset).
func (s *jobSync) backoffLimit() int {
	if b := s.job.Spec.BackoffLimit; b != nil {
		return int(*b)
	}
	return 6
}

// completions returns spec.completions; false for a work queue (unset).
func (s *jobSync) completions() (int, bool) {
	if c := s.job.Spec.Completions; c != nil {
		return int(*c), true
	}
	return 0, false
}

// progress describes the successes so far: "2/3 succeeded".
func (s *jobSync) progress() string {
	if n, ok := s.completions(); ok {
		return fmt.Sprintf("%d/%d succeeded", s.rec.Succeeded, n)
	}
	return fmt.Sprintf("%d succeeded", s.rec.Succeeded)
}

// fail decides whether the run failed, and records why.
func (s *jobSync) fail() bool {
	limit := s.backoffLimit()
	switch {
	case s.rec.Reason == ReasonPodFailurePolicy:
	case s.rec.Failed > limit:
		s.rec.Reason = ReasonBackoffLimitExceeded
		s.rec.Message = fmt.Sprintf("%d failed %s, more than backoffLimit %d", s.rec.Failed, plural(s.rec.Failed, "pod", "pods"), limit)
	case s.job.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && s.pastLimitOnFailure(limit):
		s.rec.Reason = ReasonBackoffLimitExceeded
		s.rec.Message = fmt.Sprintf("%d failures and container restarts reach backoffLimit %d", s.rec.Failed+s.restarts(), limit)
	case s.pastDeadline():
		s.rec.Reason = ReasonDeadlineExceeded
		s.rec.Message = fmt.Sprintf("ran longer than activeDeadlineSeconds %d", *s.job.Spec.ActiveDeadlineSeconds)
	default:
		return false
	}
	s.rec.Condition = JobFailed
	return true
}

// restarts sums the container restarts of the running pods.
func (s *jobSync) restarts() int {
	n := 0
	for _, r := range s.active {
		if p := s.byName[r.Name]; p != nil {
			n += p.Restarts
		}
	}
	return n
}

// pastLimitOnFailure is Kubernetes' pastBackoffLimitOnFailure: with
// restartPolicy OnFailure the restarts of running pods count as failures;
// the limit is reached when they reach backoffLimit (any restart when it
// is 0). kelpie adds the failed pods, which Kubernetes counts separately.
func (s *jobSync) pastLimitOnFailure(limit int) bool {
	n := s.restarts()
	if n == 0 {
		return false
	}
	if limit == 0 {
		return true
	}
	return s.rec.Failed+n >= limit
}

// pastDeadline reports whether activeDeadlineSeconds passed.
func (s *jobSync) pastDeadline() bool {
	d := s.job.Spec.ActiveDeadlineSeconds
	return d != nil && !s.now.Before(s.rec.StartTime.Add(time.Duration(*d)*time.Second))
}

// complete decides whether the run completed.
func (s *jobSync) complete() bool {
	n, ok := s.completions()
	switch {
	case !ok:
		if s.rec.Succeeded == 0 || len(s.active) > 0 {
			return false
		}
	case s.job.indexed():
		for i := range n {
			if !s.rec.CompletedIndexes.Has(i) {
				return false
			}
		}
	case s.rec.Succeeded < n:
		return false
	}
	s.rec.Condition, s.rec.Reason = JobComplete, ReasonCompletionsReached
	s.rec.Message = s.progress()
	return true
}

// finished handles a run that ended (now or before): its running pods
// are deleted, the others kept until the TTL.
func (s *jobSync) finished(mine []*JobPod) {
	if s.rec.FinishTime.IsZero() {
		s.rec.FinishTime = s.now
		s.eventf("Job %s %s: %s: %s", s.job.Name, s.rec.Condition.verb(), s.rec.Reason, s.rec.Message)
	}
	s.rec.Active = nil
	if ttl := s.job.Spec.TTLSecondsAfterFinished; ttl != nil {
		s.d.ExpireAt = s.rec.FinishTime.Add(time.Duration(*ttl) * time.Second)
		s.d.Expired = !s.now.Before(s.d.ExpireAt)
		if !s.d.Expired {
			s.wake(s.d.ExpireAt)
		}
	}
	for _, p := range mine {
		switch {
		case s.d.Expired:
			s.deletePod(p.Name, "ttlSecondsAfterFinished passed")
		case !p.Phase.finished():
			s.deletePod(p.Name, "the Job "+s.rec.Condition.verb())
		}
	}
	s.d.Record = s.rec
}

// scale keeps the wanted number of pods running: it deletes any beyond it
// and creates the missing ones, after the failure back-off.
func (s *jobSync) scale() {
	parallelism := 1
	if p := s.job.Spec.Parallelism; p != nil {
		parallelism = int(*p)
	}
	n, hasCompletions := s.completions()
	want := parallelism
	var pending []int // indexes to run, for an Indexed Job
	switch {
	case s.job.indexed():
		running := map[int]bool{}
		for _, r := range s.active {
			running[r.Index] = true
		}
		for i := range n {
			if !s.rec.CompletedIndexes.Has(i) && !running[i] {
				pending = append(pending, i)
			}
		}
		want = min(parallelism, len(running)+len(pending))
	case hasCompletions:
		want = min(parallelism, max(n-s.rec.Succeeded, 0))
	case s.rec.Succeeded > 0:
		// A work queue that had a success creates no more pods.
		want = min(parallelism, len(s.active))
	}
	s.trim(want)
	missing := want - len(s.active)
	if missing <= 0 {
		return
	}
	if f := s.rec.FailuresSinceSuccess; f > 0 {
		due := s.rec.LastFailure.Add(jobBackoff(f))
		if s.now.Before(due) {
			s.wake(due)
			return
		}
	}
	for i := range missing {
		index := -1
		if s.job.indexed() {
			index = pending[i]
		}
		seq := s.rec.Created
		s.rec.Created++
		name := JobPodName(s.job.Name, s.job.Identity, seq, index)
		c := JobPodToCreate{Name: name, Seq: seq, Index: index, Hostname: name}
		if index >= 0 {
			c.Env = []corev1.EnvVar{{Name: CompletionIndexEnv, Value: strconv.Itoa(index)}}
			c.Hostname = s.job.Name + "-" + strconv.Itoa(index)
		}
		s.d.Create = append(s.d.Create, c)
		r := JobPodRecord{Name: c.Name, Seq: seq, Index: index}
		s.active = append(s.active, r)
		s.rec.Active = append(s.rec.Active, r)
	}
}

// trim deletes active pods beyond want (and, for an Indexed Job, second
// pods of one index): first those not yet running, then those not Ready,
// then the most recent.
func (s *jobSync) trim(want int) {
	var keep, extra []JobPodRecord
	seen := map[int]bool{}
	order := slices.Clone(s.active)
	slices.SortStableFunc(order, func(a, b JobPodRecord) int { return s.rank(a) - s.rank(b) })
	for _, r := range order {
		if r.Index >= 0 && seen[r.Index] || len(keep) >= want {
			extra = append(extra, r)
			continue
		}
		seen[r.Index] = true
		keep = append(keep, r)
	}
	if len(extra) == 0 {
		return
	}
	drop := map[string]bool{}
	for _, r := range extra {
		drop[r.Name] = true
		s.deletePod(r.Name, fmt.Sprintf("more pods than the %d the Job needs now", want))
	}
	s.active = slices.DeleteFunc(s.active, func(r JobPodRecord) bool { return drop[r.Name] })
	s.rec.Active = slices.DeleteFunc(s.rec.Active, func(r JobPodRecord) bool { return drop[r.Name] })
}

// rank orders active pods from most to least worth keeping: Ready, then
// running, then pending or not reported; older before newer.
func (s *jobSync) rank(r JobPodRecord) int {
	p := s.byName[r.Name]
	switch {
	case p != nil && p.Ready:
		return 0
	case p != nil && p.Phase == PodRunning:
		return 1
	}
	return 2
}
