package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/kelpie-dev/kelpie/probes"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/source"
	"github.com/kelpie-dev/kelpie/specs"
)

// restore re-reads the applied commit from the cache, so that the host is
// repaired against it before (and without) the first fetch. A host that
// runs it already plans nothing: a restarted agent restarts no container.
func (a *Agent) restore(ctx context.Context) {
	ap := a.state.Applied
	if ap == nil {
		return
	}
	log := a.log.With("commit", ap.Short())
	f, err := a.src.Commit(ap.Hash)
	if err != nil {
		log.Warn("cannot re-read the applied commit from the cache; waiting for the first fetch", "err", err)
		return
	}
	t, err := a.load(f)
	if err != nil {
		log.Warn("the applied commit no longer validates; waiting for the first fetch", "err", err)
		return
	}
	a.target = t
	log.Info("restored the applied commit", "subject", ap.Subject)
}

// load validates a fetched tree and expands it for this host.
func (a *Agent) load(f source.Fetched) (*target, error) {
	np := a.cfg.Network.NodePorts
	state, err := specs.Load(f.FS, a.cfg.Path, specs.Options{SkipKinds: a.cfg.SkipKinds, NodePortRange: [2]int32{np.Min, np.Max}, AgeIdentities: a.cfg.AgeIdentities})
	if err != nil {
		return nil, err
	}
	desired, notices := reconciler.Expand(state, a.cfg.Host)
	t := &target{commit: commitInfo(f.Commit), desired: desired, notices: make([]string, len(notices)), state: state, full: desired}
	for i, n := range notices {
		t.notices[i] = n.String()
	}
	return t, nil
}

// sync fetches the head and converges the host to it, or, when the head
// is refused, repairs the host against the commit it runs. A head that is
// new, or whose last attempt failed, is loaded again; a refused head that
// has not changed stalls (no retry storm) until a newer commit arrives,
// which supersedes it at once.
func (a *Agent) sync(ctx context.Context, reason string) {
	r := a.beginSync(ctx, reason)
	if r == nil {
		return
	}
	cand := a.target
	before := ""
	if cand != nil {
		before = cand.commit.Hash
	}
	if r.fetched && !r.stalled && (cand == nil || cand.commit.Hash != r.head.Hash) {
		if t := a.validate(r); t != nil {
			cand = t
		}
	}

	n, cerr := a.converge(ctx, cand)
	if ctx.Err() != nil {
		return
	}
	if cerr != nil && cerr.Kind.refusal() && cand != a.target {
		// The new commit planned to something refused (no pods left):
		// refuse it and keep the host on the commit it runs.
		r.refusal, cand = cerr, a.target
		n, cerr = a.converge(ctx, cand)
		if ctx.Err() != nil {
			return
		}
	}
	a.target = cand
	r.info.Actions = n
	if cerr != nil && r.transient == nil {
		r.transient = cerr
	}

	switch {
	case cerr == nil && cand != nil:
		a.converged(cand.commit)
	case cerr != nil && cand != nil && cand.commit.Hash != a.appliedHash():
		a.setPending(cand.commit, cerr)
	}
	switch {
	case r.refusal != nil && r.head != nil:
		a.setPending(*r.head, r.refusal)
	case r.fetched && cerr == nil:
		a.state.Pending = nil
	}
	a.syncServices(ctx)
	a.endSync(r)
	if m, ok := a.src.(maintainer); ok && cand != nil && cand.commit.Hash != before {
		// A new head was fetched: compact the cache if packs piled up,
		// after the apply rather than before it.
		if err := m.Maintain(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("git cache maintenance failed", "err", err)
		}
	}
}

// reportSkipped logs the URLs a fetch passed over for a mirror, once for
// as long as the same ones fail the same way.
func (a *Agent) reportSkipped(f source.Fetched) {
	var b strings.Builder
	for _, err := range f.Skipped {
		b.WriteString(err.Error())
		b.WriteByte('\n')
	}
	if key := b.String(); key != a.lastSkipped {
		a.lastSkipped = key
		for _, err := range f.Skipped {
			a.log.Warn("repository URL passed over", "used", f.Source, "err", err)
		}
	}
}

// repair converges the host to the commit it runs, between syncs: a
// container that exited or was removed by hand is restored (after its
// restart back-off).
func (a *Agent) repair(ctx context.Context) {
	n, cerr := a.converge(ctx, a.target)
	if ctx.Err() != nil {
		return
	}
	switch {
	case cerr != nil:
		a.state.LastError = cerr
		a.retryLater()
		a.logError(cerr)
	case a.target != nil:
		a.converged(a.target.commit)
		if le := a.state.LastError; le != nil && (le.Kind == KindObserve || le.Kind == KindApply) {
			a.state.LastError = nil
			if p := a.state.Pending; p != nil && p.Error != nil {
				a.state.LastError = p.Error
			}
		}
	}
	if a.cluster != nil {
		a.reportNode()
		a.syncRoutes()
	}
	a.syncServices(ctx)
	if n > 0 || cerr != nil {
		a.recordRepair(cerr)
		a.log.Info("drift repaired", "commit", a.targetShort(), "actions", n, "ok", cerr == nil)
		a.save()
	}
	a.publish(nil)
}

// converge observes the host, plans against t and executes the plan. It
// sets the next drift check and refreshes the pods status. A nil t (no
// commit ever validated) does nothing: an agent never plans from nothing.
func (a *Agent) converge(ctx context.Context, t *target) (int, *SyncError) {
	now := a.clock.Now()
	a.ops.log.begin(now)
	a.nextCheck = now.Add(a.cfg.DriftInterval)
	if t == nil {
		return 0, nil
	}
	defer func() { a.metrics.reconcile.Observe(a.clock.Now().Sub(now).Seconds()) }()
	if a.cluster == nil {
		a.allocateAlone(t)
	}
	subnet, err := a.podRange()
	if err != nil {
		return 0, a.newError(KindNetwork, &t.commit, err)
	}
	actual, err := a.rt.Observe(ctx)
	if err != nil {
		return 0, a.newError(KindObserve, &t.commit, fmt.Errorf("observe the host: %w", err))
	}
	defer a.wakeForJobs(now)
	desired, jobNotices := a.runJobs(t, actual, now)
	desired = desired.WithServiceEnv(a.serviceEnv(t))
	desired = reconciler.BindSlots(desired, actual) // names pods as their slots' pods are named
	actual = a.readiness(desired, actual)
	a.setPods(desired, actual)
	readyElsewhere, hashElsewhere := a.elsewhere()
	res, err := reconciler.Plan(desired, actual, reconciler.PlanOptions{Now: now, Prune: a.cfg.Prune, AllowEmpty: a.cfg.AllowEmpty || t.allowEmpty, RollingUpdates: true, Privileges: &a.priv, PodSubnet: subnet, RolloutAllowed: a.allowedOnThisHost(), SurgeAllowed: a.surgeAllowedOnThisHost(), ReadyElsewhere: readyElsewhere, HashElsewhere: hashElsewhere, StatefulReplicas: a.statefulReplicas(t)})
	if err != nil {
		if errors.Is(err, reconciler.ErrEmptyDesired) {
			return 0, a.newError(KindEmpty, &t.commit, fmt.Errorf("commit %s refused: %w (start the agent with --allow-empty to let a commit remove every pod)", t.commit.Short(), err))
		}
		return 0, a.newError(KindPlan, &t.commit, fmt.Errorf("commit %s refused: %w", t.commit.Short(), err))
	}
	a.phases.Plan += a.clock.Now().Sub(now).Seconds()
	if !res.NextCheck.IsZero() && res.NextCheck.Before(a.nextCheck) {
		a.nextCheck = res.NextCheck
	}
	a.waiting = a.waiting[:0]
	for _, w := range res.Waiting {
		a.waiting = append(a.waiting, w.String())
	}
	a.notices = append(append(append(a.notices[:0], t.notices...), jobNotices...), keptStrings(res.Kept)...)
	if res.Empty() {
		return 0, nil
	}
	commit := t.commit.Short()
	estart := a.clock.Now()
	defer func() { a.phases.Apply += a.clock.Now().Sub(estart).Seconds() }()
	report := reconciler.Execute(ctx, a.rt, res.Actions, reconciler.ExecOptions{
		Parallelism: a.cfg.Parallelism,
		OnDone: func(act reconciler.Action, err error, took time.Duration) {
			a.ops.log.done(act, err)
			if err != nil {
				a.log.Warn("action failed", "commit", commit, "action", act.String(), "seconds", took.Seconds(), "err", err)
				return
			}
			a.log.Info("action", "commit", commit, "action", act.String(), "seconds", took.Seconds())
		},
	})
	if after, err := a.rt.Observe(ctx); err == nil {
		bound := reconciler.BindSlots(t.desired, after)
		a.setPods(bound, a.readiness(bound, after))
	}
	a.nextCheck = a.clock.Now().Add(a.cfg.DriftInterval)
	if !res.NextCheck.IsZero() && res.NextCheck.Before(a.nextCheck) {
		a.nextCheck = res.NextCheck // a restart back-off or minReadySeconds ends
	}
	if res.Continue {
		// A rolling update goes on once the pods just replaced run; the
		// event delay lets one that fails at once show it first.
		a.nextCheck = a.clock.Now().Add(a.cfg.EventDelay)
	}
	if !report.OK() {
		return len(res.Actions), a.newError(KindApply, &t.commit, fmt.Errorf("apply commit %s: %w", commit, report.Err()))
	}
	return len(res.Actions), nil
}

// converged records that the host runs c.
func (a *Agent) converged(c CommitInfo) {
	if a.state.Applied == nil || a.state.Applied.Hash != c.Hash {
		a.state.Applied = &AppliedCommit{CommitInfo: c, AppliedAt: a.clock.Now()}
		a.metrics.setApplied(c.Hash)
	}
	if p := a.state.Pending; p != nil && p.Hash == c.Hash {
		a.state.Pending = nil
	}
}

// setPending records that the host does not run c, and why.
func (a *Agent) setPending(c CommitInfo, why *SyncError) {
	since := a.clock.Now()
	if p := a.state.Pending; p != nil && p.Hash == c.Hash {
		since = p.Since
	}
	a.state.Pending = &PendingCommit{CommitInfo: c, Reason: why.Kind, Since: since, Error: why}
}

// retryLater schedules a retry of a transient failure with exponential
// back-off.
func (a *Agent) retryLater() {
	a.failures++
	d := a.cfg.RetryMin
	for i := 1; i < a.failures && d < a.cfg.RetryMax; i++ {
		d *= 2
	}
	a.nextRetry = a.clock.Now().Add(min(d, a.cfg.RetryMax))
}

// newError records a failure: a SyncError for state and status, counted
// in kelpie_errors_total.
func (a *Agent) newError(kind ErrorKind, c *CommitInfo, err error) *SyncError {
	e := &SyncError{Kind: kind, Message: err.Error(), Time: a.clock.Now()}
	if c != nil {
		e.Commit = c.Hash
	}
	if kind == KindInvalid {
		e.Errors = manifestErrors(err, a.cfg.Path)
	}
	a.metrics.errors.WithLabelValues(string(kind)).Inc()
	return e
}

// fetchKind classifies a fetch error.
func fetchKind(err error) ErrorKind {
	switch {
	case errors.Is(err, source.ErrNotFastForward):
		return KindNotFastForward
	case errors.Is(err, source.ErrUntrusted):
		return KindUntrusted
	}
	return KindFetch
}

// report logs a sync's outcome: errors at warn (a repeat of the same error
// at debug), a sync that changed something at info, the rest at debug.
func (a *Agent) report(info SyncInfo, head *CommitInfo) {
	ph := info.Phases
	attrs := []any{"reason", info.Reason, "result", info.Result, "actions", info.Actions, "seconds", info.Seconds,
		slog.Group("phases", "fetch", ph.Fetch, "validate", ph.Validate, "plan", ph.Plan, "apply", ph.Apply)}
	if head != nil {
		attrs = append(attrs, "commit", head.Short(), "subject", head.Subject)
	}
	if le := a.state.LastError; le != nil {
		a.logError(le, attrs...)
		return
	}
	a.lastLogged = ""
	level := slog.LevelDebug
	if info.Actions > 0 {
		level = slog.LevelInfo
	}
	a.log.Log(context.Background(), level, "sync", attrs...)
}

// logError logs a failure at warn the first time, at debug when repeated.
func (a *Agent) logError(e *SyncError, attrs ...any) {
	key := string(e.Kind) + e.Commit + e.Message
	level := slog.LevelWarn
	if key == a.lastLogged {
		level = slog.LevelDebug
	}
	a.lastLogged = key
	msg := "sync failed"
	switch {
	case e.Kind.refusal():
		msg = "commit refused; the host keeps running the last good commit"
	case e.Kind == KindObserve || e.Kind == KindApply:
		msg = "reconcile failed; retrying with back-off"
	}
	attrs = append(attrs, "kind", string(e.Kind), "err", e.Message)
	a.log.Log(context.Background(), level, msg, attrs...)
}

// appliedHash is the applied commit's hash, "" before the first.
func (a *Agent) appliedHash() string {
	if a.state.Applied == nil {
		return ""
	}
	return a.state.Applied.Hash
}

// targetShort is the short hash of the commit drift repair converges to.
func (a *Agent) targetShort() string {
	if a.target == nil {
		return ""
	}
	return a.target.commit.Short()
}

// save writes the state; a failure is logged, the loop goes on.
func (a *Agent) save() {
	if err := SaveState(a.cfg.StatePath(), a.state); err != nil {
		a.log.Error("cannot save the agent state", "err", err)
	}
}

// readiness returns actual with the pods' readiness: the probe engine's,
// which also learns from it what to probe, or without one (no Prober) a
// pod is Ready when its app containers run.
func (a *Agent) readiness(desired reconciler.Desired, actual reconciler.Actual) reconciler.Actual {
	if a.probes == nil {
		return probes.Unprobed(desired.Pods, actual)
	}
	return a.probes.Observe(desired.Pods, actual)
}

// setPods records observed pods, with their readiness, for status and
// metrics.
func (a *Agent) setPods(desired reconciler.Desired, actual reconciler.Actual) {
	a.pods = podStatuses(actual.Pods, desired.Pods)
	a.observed(actual, a.clock.Now())
	a.podHashes = make(map[string]string, len(actual.Pods))
	for _, p := range actual.Pods {
		if p.Hash != "" {
			a.podHashes[reconciler.JoinName(p.Namespace, p.Name)] = p.Hash
		}
	}
	if a.cluster != nil {
		a.clusterActual(actual)
	}
	a.metrics.setPods(a.pods)
}

// keptStrings formats kept subjects.
func keptStrings(kept []reconciler.Kept) []string {
	out := make([]string, len(kept))
	for i, k := range kept {
		out[i] = "kept " + k.String()
	}
	return out
}

// publish refreshes the status snapshot HTTP readers see; info, when not
// nil, is the sync that just ended.
func (a *Agent) publish(info *SyncInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &a.status
	s.Node, s.Repo, s.Ref, s.Path = a.cfg.Host.Name, displayRepos(a.cfg.Repos), a.cfg.Ref, a.cfg.Path
	s.Applied, s.Pending, s.LastError = a.state.Applied, a.state.Pending, a.state.LastError
	if info != nil {
		s.LastSync = info
	}
	s.Pods = append([]PodStatus{}, a.pods...)
	s.Waiting = append([]string{}, a.waiting...)
	s.Stalled = slices.Clone(a.rollouts.stalls)
	s.Workloads = slices.Clone(a.rollouts.views)
	s.Alerts, s.Notifications = a.alertStatuses()
	s.Notices = append([]string{}, a.notices...)
	if a.startNote != "" {
		s.Notices = append(s.Notices, a.startNote)
	}
	s.PodRange, s.PodRangeWait = "", a.net.why
	s.Routes, s.Unrouted = slices.Clone(a.net.routes), slices.Clone(a.net.unrouted)
	if a.net.subnet.IsValid() {
		s.PodRange = a.net.subnet.String()
	}
	s.Jobs = append([]reconciler.JobStatus{}, a.jobStatus...)
	s.CronJobs = append([]reconciler.CronJobStatus{}, a.cronStatus...)
	s.Services, s.DataPath, s.DNS = a.servicesStatus()
	if a.cluster != nil {
		s.Cluster = a.clusterStatus()
	}
}
