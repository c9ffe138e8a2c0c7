package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/kelpie-dev/kelpie/source"
)

// syncRun is one sync in progress: what sync and clusterSync share.
type syncRun struct {
	info  SyncInfo
	start time.Time
	// f is the fetched head (its Commit empty when the fetch failed
	// before finding one); fetched is whether the fetch succeeded.
	f       source.Fetched
	fetched bool
	head    *CommitInfo
	// refusal refuses the head (no retry); transient is a failure retried
	// with back-off.
	refusal, transient *SyncError
	// stalled: the head was refused before and has not changed.
	stalled bool
}

// beginSync starts a sync: it fetches the head and classifies the result.
// It returns nil when ctx ended during the fetch.
func (a *Agent) beginSync(ctx context.Context, reason string) *syncRun {
	r := &syncRun{start: a.clock.Now()}
	a.syncs++
	r.info = SyncInfo{Seq: a.syncs, Reason: reason}
	a.phases = SyncPhases{}
	f, err := a.src.Fetch(ctx, a.appliedHash())
	a.phases.Fetch = a.clock.Now().Sub(r.start).Seconds()
	if ctx.Err() != nil {
		return nil
	}
	r.f = f
	if f.Commit.Hash != "" {
		c := commitInfo(f.Commit)
		r.head = &c
	}
	if err != nil {
		e := a.newError(fetchKind(err), r.head, err)
		if e.Kind.refusal() {
			r.refusal = e
		} else {
			r.transient = e
		}
		return r
	}
	r.fetched = true
	a.reportSkipped(f)
	r.info.Source = f.Source
	for _, e := range f.Skipped {
		r.info.Skipped = append(r.info.Skipped, e.Error())
	}
	if p := a.state.Pending; p != nil && p.Hash == r.head.Hash && p.Error != nil && p.Error.Kind.refusal() {
		r.refusal, r.stalled = p.Error, true // refused before, unchanged since: stall
	}
	return r
}

// validate loads the fetched head, timing it; an invalid head is the
// run's refusal.
func (a *Agent) validate(r *syncRun) *target {
	vstart := a.clock.Now()
	t, err := a.load(r.f)
	a.phases.Validate = a.clock.Now().Sub(vstart).Seconds()
	if err != nil {
		r.refusal = a.newError(KindInvalid, r.head, fmt.Errorf("commit %s refused: %w", r.head.Short(), err))
		return nil
	}
	return t
}

// endSync records the outcome of a sync: the last error, the retry, the
// metrics, the log line, the state file and the status.
func (a *Agent) endSync(r *syncRun) {
	r.info.Result = resultOK
	switch {
	case r.transient != nil:
		r.info.Result = resultFailed
		a.state.LastError = r.transient
		a.retryLater()
	case r.refusal != nil:
		r.info.Result = resultRefused
		a.state.LastError = r.refusal
		a.failures = 0
	default:
		a.state.LastError = nil
		a.failures = 0
	}
	if r.head != nil {
		r.info.Commit = r.head.Hash
	}
	end := a.clock.Now()
	r.info.Time, r.info.Seconds, r.info.Phases = end, end.Sub(r.start).Seconds(), a.phases
	a.metrics.sync(r.info.Result, end)
	a.metrics.observePhases(a.phases)
	a.report(r.info, r.head)
	a.recordSync(r)
	a.save()
	a.publish(&r.info)
}
