package workload

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
)

// MaxMissedTicks is Kubernetes' limit on the ticks a CronJob may have
// missed before it warns "too many missed start times": more than this
// many since the last tick run (or since startingDeadlineSeconds ago).
const MaxMissedTicks = 100

// CronRecord is what a CronJob's scheduler keeps durably in the cluster
// state (JSON) between decisions.
type CronRecord struct {
	// Since is when the CronJob was first seen; no earlier tick runs.
	Since time.Time `json:"since,omitzero"`
	// LastScheduleTime is the latest tick whose Job was created.
	LastScheduleTime time.Time `json:"lastScheduleTime,omitzero"`
	// LastMissed is the latest tick reported as missed, and LastHeld the
	// latest reported as held back by concurrencyPolicy Forbid, so each is
	// reported once.
	LastMissed time.Time `json:"lastMissed,omitzero"`
	LastHeld   time.Time `json:"lastHeld,omitzero"`
}

// CronRun is a Job a CronJob created, as observed.
type CronRun struct {
	Name string
	// ScheduledAt is the tick the Job runs for (the trigger time for a
	// manual run).
	ScheduledAt time.Time
	// Manual is set for a Job made by `kelpie cron trigger`.
	Manual bool
	// Condition is "" while the Job runs.
	Condition JobCondition
}

// CronTick is a Job to create for a CronJob.
type CronTick struct {
	// Name is the Job's name: CronJobName or ManualJobName.
	Name        string
	ScheduledAt time.Time
	Manual      bool
}

// JobDeletion is a Job to delete and why.
type JobDeletion struct {
	Name   string
	Reason string
}

// CronDecision is what ScheduleCron decided.
type CronDecision struct {
	// Record is the new record; the caller stores it (fenced) before or
	// together with creating Run.
	Record CronRecord
	// Run is the Job to create now; nil for none.
	Run *CronTick
	// Delete lists the Jobs to delete (Replace, history limits).
	Delete []JobDeletion
	// Missed counts the ticks newly found missed (not run and never to
	// be); TooManyMissed is Kubernetes' warning of more than
	// MaxMissedTicks.
	Missed        int
	TooManyMissed bool
	// Wake is when ScheduleCron must run again although no Job changed:
	// the next tick; zero when suspended or the schedule never fires.
	Wake time.Time
	// Events are the transitions of this decision, one log line each.
	Events []string
}

// CronJobName names the Job of a CronJob's tick: NAME-<minutes since the
// Unix epoch>, as Kubernetes does, so every leader that decides a tick
// names its Job alike and a tick runs once.
func CronJobName(name string, tick time.Time) string {
	return name + "-" + strconv.FormatInt(tick.Unix()/60, 10)
}

// ManualJobName names the Job of `kelpie cron trigger NAME` at at:
// NAME-manual-<seconds since the Unix epoch>, never a tick's name.
func ManualJobName(name string, at time.Time) string {
	return name + "-manual-" + strconv.FormatInt(at.Unix(), 10)
}

// Trigger returns the Job `kelpie cron trigger` runs at now, whatever the
// schedule, suspend and concurrencyPolicy say (as `kubectl create job
// --from=cronjob/NAME`).
func Trigger(cj *batchv1.CronJob, now time.Time) CronTick {
	return CronTick{Name: ManualJobName(cj.Name, now), ScheduledAt: now, Manual: true}
}

// JobFromCron returns the Job to run for a tick of cj. Its identity is
// fixed by the tick (namespace, Job name), not by the template: a
// template change applies to later ticks and never reruns a tick's Job.
func JobFromCron(cj *batchv1.CronJob, tick CronTick) Job {
	sum := sha256.Sum256([]byte("cronjob\x00" + cj.Namespace + "\x00" + tick.Name))
	return Job{
		Namespace: cj.Namespace,
		Name:      tick.Name,
		Identity:  "sha256:" + hex.EncodeToString(sum[:]),
		Spec:      *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
}

// ScheduleCron decides, as the Kubernetes CronJob controller does, what
// the (defaulted) CronJob cj does at now, from its record rec (the zero
// record for one never seen) and the Jobs it owns:
//
//   - the tick to run is the latest one after the last tick run (or after
//     rec.Since) up to now: at most one Job per decision, earlier missed
//     ticks are skipped and reported; with startingDeadlineSeconds a tick
//     older than that is skipped too; more than MaxMissedTicks missed gives
//     Kubernetes' warning, and the latest tick still runs;
//   - a tick whose Job exists already is not run again;
//   - suspend runs nothing (missed ticks run when resumed, within the
//     deadline);
//   - concurrencyPolicy Forbid holds a tick back while a Job of the
//     CronJob runs (it runs when that Job ends, deadline permitting);
//     Replace deletes the running Jobs first; Allow runs it anyway;
//   - finished Jobs beyond successfulJobsHistoryLimit and
//     failedJobsHistoryLimit are deleted, oldest first.
//
// Manual Jobs count as the CronJob's own for concurrency and history.
func ScheduleCron(cj *batchv1.CronJob, rec CronRecord, runs []CronRun, now time.Time) (d CronDecision, err error) {
	d.Record = rec
	if d.Record.Since.IsZero() {
		d.Record.Since = now
	}
	sched, perr := ParseSchedule(&cj.Spec)
	if perr != nil {
		return d, fmt.Errorf("CronJob %s/%s: %w", cj.Namespace, cj.Name, perr)
	}
	eventf := func(format string, args ...any) { d.Events = append(d.Events, fmt.Sprintf(format, args...)) }
	var active []CronRun
	exists := map[string]bool{}
	for _, r := range runs {
		exists[r.Name] = true
		if r.Condition == "" {
			active = append(active, r)
		}
	}
	deleted := map[string]bool{}
	defer func() { d.Delete = append(d.Delete, history(cj, runs, deleted)...) }()
	if next := sched.Next(now); !next.IsZero() && !isTrue(cj.Spec.Suspend) {
		d.Wake = next
	}
	if isTrue(cj.Spec.Suspend) {
		return d, nil
	}
	earliest := later(d.Record.Since, d.Record.LastScheduleTime)
	tick, ok := lastTick(sched, earliest, now)
	if !ok {
		return d, nil
	}
	// Kubernetes counts missed ticks from the deadline when one is set.
	from := earliest
	deadline := cj.Spec.StartingDeadlineSeconds
	if deadline != nil {
		from = later(from, now.Add(-time.Duration(*deadline)*time.Second))
	}
	if countTicks(sched, from, now, MaxMissedTicks) > MaxMissedTicks {
		d.TooManyMissed = true
		eventf("CronJob %s: too many missed start times (> %d); set or decrease startingDeadlineSeconds or check clock skew", cj.Name, MaxMissedTicks)
	}
	late := deadline != nil && tick.Add(time.Duration(*deadline)*time.Second).Before(now)
	// Report, once each, the ticks that will never run.
	reportFrom := later(earliest, d.Record.LastMissed)
	missedUntil := tick.Add(-time.Nanosecond)
	if late {
		missedUntil = tick
	}
	if missedUntil.After(reportFrom) {
		if n := countMissed(sched, reportFrom, missedUntil, exists, cj.Name); n > 0 {
			d.Missed = n
			last, _ := lastTick(sched, reportFrom, missedUntil)
			d.Record.LastMissed = last
			more := ""
			if n > MaxMissedTicks {
				more = "more than "
			}
			eventf("CronJob %s: missed %s%d %s up to %s; not run", cj.Name, more, min(n, MaxMissedTicks), plural(n, "tick", "ticks"), stamp(last))
		}
	}
	if late {
		return d, nil
	}
	name := CronJobName(cj.Name, tick)
	if exists[name] {
		// Created by an earlier decision whose record was lost: repair it.
		d.Record.LastScheduleTime = tick
		return d, nil
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(active) > 0 {
			if !d.Record.LastHeld.Equal(tick) {
				d.Record.LastHeld = tick
				eventf("CronJob %s: tick %s held back: Job %s still runs (concurrencyPolicy Forbid)", cj.Name, stamp(tick), active[0].Name)
			}
			return d, nil
		}
	case batchv1.ReplaceConcurrent:
		for _, r := range active {
			deleted[r.Name] = true
			d.Delete = append(d.Delete, JobDeletion{Name: r.Name, Reason: fmt.Sprintf("replaced by the Job of tick %s (concurrencyPolicy Replace)", stamp(tick))})
		}
	}
	d.Run = &CronTick{Name: name, ScheduledAt: tick}
	d.Record.LastScheduleTime = tick
	eventf("CronJob %s: tick %s runs Job %s", cj.Name, stamp(tick), name)
	return d, nil
}

// countMissed counts the ticks of sched in (after, until] that have no Job
// (a Job whose record was lost did run), at most MaxMissedTicks+1.
func countMissed(sched cron.Schedule, after, until time.Time, exists map[string]bool, name string) int {
	n := 0
	for t := sched.Next(after); !t.IsZero() && !t.After(until) && n <= MaxMissedTicks; t = sched.Next(t) {
		if !exists[CronJobName(name, t)] {
			n++
		}
	}
	return n
}

// history returns the finished Jobs beyond the history limits, oldest
// first, leaving out those already deleted.
func history(cj *batchv1.CronJob, runs []CronRun, deleted map[string]bool) []JobDeletion {
	var out []JobDeletion
	for _, c := range []struct {
		cond  JobCondition
		limit *int32
		field string
	}{
		{JobComplete, cj.Spec.SuccessfulJobsHistoryLimit, "successfulJobsHistoryLimit"},
		{JobFailed, cj.Spec.FailedJobsHistoryLimit, "failedJobsHistoryLimit"},
	} {
		if c.limit == nil {
			continue
		}
		var done []CronRun
		for _, r := range runs {
			if r.Condition == c.cond && !deleted[r.Name] {
				done = append(done, r)
			}
		}
		// Newest first; the Jobs beyond the limit go, oldest first.
		slices.SortFunc(done, func(a, b CronRun) int {
			return cmp.Or(b.ScheduledAt.Compare(a.ScheduledAt), cmp.Compare(b.Name, a.Name))
		})
		for i := len(done) - 1; i >= int(*c.limit); i-- {
			out = append(out, JobDeletion{Name: done[i].Name, Reason: fmt.Sprintf("beyond %s %d", c.field, *c.limit)})
		}
	}
	return out
}

// isTrue reports whether an optional flag is set and true.
func isTrue(b *bool) bool { return b != nil && *b }

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// stamp formats a tick for messages, in UTC.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
