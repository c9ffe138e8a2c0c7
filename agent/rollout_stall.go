package agent

import (
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// AlertRolloutStalled fires when a Deployment's rollout made no progress
// for its progressDeadlineSeconds, and resolves when it makes progress
// again or completes.
const AlertRolloutStalled = "KelpieRolloutStalled"

// stallCheckEvery bounds how often the rollouts' progress is computed
// (in a cluster that reads every member's status).
const stallCheckEvery = 5 * time.Second

// rolloutState is the agent's bookkeeping of rollouts across steps: the
// workloads of the commit in force, and which Deployments' rollouts are
// stalled (progressDeadlineSeconds).
type rolloutState struct {
	commit        string                       // the commit workloads are of
	workloads     []reconciler.RolloutWorkload // reconciler.RolloutWorkloads of that commit
	tracker       scheduler.StallTracker
	checked       time.Time // when the stalls were last computed
	checkedCommit string    // the commit in force then
	stalls        []RolloutStall
	views         []WorkloadStatus     // the workloads' counts, for status
	gauge         *prometheus.GaugeVec // kelpie_rollout_stalled
	gaugeSet      map[string]bool      // workloads whose gauge series exists
}

// RolloutStall is a Deployment whose rollout made no progress for its
// progressDeadlineSeconds: its old pods keep serving, its new ones do not
// come up. Status lists them.
type RolloutStall struct {
	// Workload is "NAMESPACE/NAME" of the Deployment.
	Workload string `json:"workload"`
	// NotReady of Total pods do not run the new template Ready.
	NotReady int `json:"notReady"`
	Total    int `json:"total"`
	// DeadlineSeconds is its progressDeadlineSeconds.
	DeadlineSeconds int `json:"deadlineSeconds"`
	// Since is when the rollout last made progress.
	Since time.Time `json:"since"`
	// Message is "rollout stalled: N of M new pods not ready after 600s".
	Message string `json:"message"`
}

// String is "NAMESPACE/NAME: MESSAGE".
func (s RolloutStall) String() string { return s.Workload + ": " + s.Message }

// checkStalls computes, at once for a new commit and else at most every
// stallCheckEvery, the progress of
// the rollouts of the commit in force and which are stalled, and sets
// kelpie_rollout_stalled. In a cluster every node computes it for the
// whole cluster, from the placement and the hosts' reports; a lone host
// for its own pods.
func (a *Agent) checkStalls() {
	r := &a.rollouts
	now := a.clock.Now()
	commit := ""
	if a.target != nil {
		commit = a.target.commit.Hash
	}
	if commit == r.checkedCommit && !r.checked.IsZero() && now.Sub(r.checked) < stallCheckEvery && !now.Before(r.checked) {
		return // a new commit starts its rollouts' clocks at once
	}
	r.checked, r.checkedCommit = now, commit
	stalls := r.tracker.Observe(now, a.rolloutProgress())
	var next []RolloutStall
	seen := map[string]bool{}
	for _, s := range stalls {
		next = append(next, RolloutStall{Workload: s.Key, NotReady: s.NotReady, Total: s.Total,
			DeadlineSeconds: int(s.Deadline / time.Second), Since: s.Since, Message: s.String()})
		seen[s.Key] = true
	}
	a.setStalledGauge(seen)
	byKey := make(map[string]RolloutStall, len(next))
	for _, s := range next {
		byKey[s.Workload] = s
	}
	views := a.workloadStatuses(byKey)
	changed := !slices.Equal(views, r.views)
	r.views = views
	if !slices.Equal(next, r.stalls) {
		for _, s := range next {
			a.log.Warn("rollout stalled; its old pods keep serving", "workload", s.Workload, "message", s.Message)
		}
		r.stalls = next
		changed = true
	}
	if changed {
		a.publish(nil)
	}
}

// setStalledGauge sets kelpie_rollout_stalled to 1 for the stalled
// workloads and to 0 for those that were and are no longer.
func (a *Agent) setStalledGauge(stalled map[string]bool) {
	r := &a.rollouts
	if r.gauge == nil {
		r.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kelpie_rollout_stalled",
			Help: "1 while a Deployment's rollout has made no progress for its progressDeadlineSeconds (its old pods keep serving), 0 once it recovered.",
		}, []string{"workload"})
		if err := a.metrics.reg.Register(r.gauge); err != nil {
			a.log.Warn("register kelpie_rollout_stalled", "err", err)
		}
		r.gaugeSet = map[string]bool{}
	}
	for w := range r.gaugeSet {
		if !stalled[w] {
			r.gauge.WithLabelValues(w).Set(0)
		}
	}
	for w := range stalled {
		r.gauge.WithLabelValues(w).Set(1)
		r.gaugeSet[w] = true
	}
}

// rolloutProgress observes the rollouts of the Deployments of the commit
// in force: for each, its pods, those that run its template and those of
// them available. In a cluster its replicas are where the placement in
// force puts them (one not placed counts as not ready); a lone host
// counts the pods it runs of it.
func (a *Agent) rolloutProgress() []scheduler.RolloutProgress {
	t := a.target
	if t == nil {
		return nil
	}
	var deployments []reconciler.RolloutWorkload
	for _, w := range a.rolloutWorkloads(t) {
		if w.Kind == "Deployment" && w.ProgressDeadline > 0 {
			deployments = append(deployments, w)
		}
	}
	if len(deployments) == 0 {
		return nil
	}
	reports := a.hostReports()
	var out []scheduler.RolloutProgress
	if a.cluster == nil {
		here := map[string][]string{} // workload key → its pods on this host
		for _, p := range t.desired.Pods {
			if p.Owner.Kind == "Deployment" {
				k := reconciler.JoinName(p.Namespace, p.Owner.Name)
				here[k] = append(here[k], reconciler.JoinName(p.Namespace, p.Name))
			}
		}
		for _, w := range deployments {
			if ids, ok := here[w.Key()]; ok {
				out = append(out, progressOf(w, ids, func(string) hostReport { return reports[""] }))
			}
		}
		return out
	}
	assignments := a.placed.Assignments
	for _, w := range deployments {
		ids := make([]string, 0, min(w.Replicas, 1024))
		for i := range w.Replicas {
			ids = append(ids, reconciler.JoinName(w.Namespace, fmt.Sprintf("%s-%d", w.Name, i)))
		}
		out = append(out, progressOf(w, ids, func(id string) hostReport { return reports[assignments[id]] }))
	}
	return out
}

// progressOf counts the pods ids of w, each as the host that report
// returns for it reports it.
func progressOf(w reconciler.RolloutWorkload, ids []string, report func(id string) hostReport) scheduler.RolloutProgress {
	p := scheduler.RolloutProgress{Key: w.Key(), Hash: w.Hash, Total: len(ids), Deadline: w.ProgressDeadline}
	for _, id := range ids {
		updated, available := report(id).has(id, w.Hash)
		if updated {
			p.Updated++
			if available {
				p.Ready++
			}
		}
	}
	return p
}

// stallAlerts are the KelpieRolloutStalled alerts of the stalled
// rollouts: cluster-wide in a cluster (the notifier sends them).
func (a *Agent) stallAlerts() []alert {
	inCluster := a.cluster != nil
	if inCluster && !a.clusterNotifier() {
		return nil
	}
	var out []alert
	for _, s := range a.rollouts.stalls {
		labels := map[string]string{"alertname": AlertRolloutStalled, "workload": s.Workload}
		if !inCluster {
			labels["node"] = a.cfg.Host.Name
		}
		out = append(out, alert{
			labels:  labels,
			summary: fmt.Sprintf("Deployment %s: %s; its old pods keep serving", s.Workload, s.Message),
			cluster: inCluster,
		})
	}
	return out
}
