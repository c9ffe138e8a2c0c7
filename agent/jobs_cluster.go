package agent

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/specs"
)

// In a cluster the leader runs the Job controller: from the records
// published with the placement in force and the Job pods every host
// reports (nodeDetail.JobPods), it decides the Job pods to run and the new
// records, places the pods like bare pods (reconciler.JobPodObjects) and
// publishes records and assignments together, fenced by its term. So a
// Job's outcome is in the cluster state before any pod it implies starts,
// and a Job that finished never runs again because an agent restarted, a
// leader changed or an unrelated commit arrived. Each host runs the Job
// pods the placement gives it (runJobs, JobsResult.OnNode).

// leaderJobs runs the Job controller for the leader on commit t: it
// returns the candidate desired state with the Job pods added as bare
// pods, the records to publish, and whether they differ from prev.
func (a *Agent) leaderJobs(prev json.RawMessage, t *target) (*specs.DesiredState, json.RawMessage, bool) {
	if t == nil || t.state == nil {
		return nil, prev, false
	}
	var records reconciler.JobRecords
	if len(prev) > 0 {
		if err := json.Unmarshal(prev, &records); err != nil {
			a.log.Warn("the Job records of the placement in force do not decode; starting from none", "err", err)
			records = reconciler.JobRecords{}
		}
	}
	if a.jobTrigger != nil {
		// A Job triggered by hand (triggerCron): published now, or, if
		// this node lost the lead meanwhile, dropped (the caller was told
		// it was created; the new leader has no record of it).
		records, a.jobTrigger = *a.jobTrigger, nil
	}
	now := a.clock.Now()
	res := reconciler.SyncJobs(reconciler.JobsInput{State: t.state, Records: records, Pods: a.clusterJobPods(), Now: now})
	for _, e := range res.Events {
		a.log.Info("job", "object", e.Kind+" "+reconciler.JoinName(e.Namespace, e.Name), "event", e.Message)
	}
	a.jobStatus, a.cronStatus = res.Jobs, res.CronJobs
	a.metrics.setJobs(res.Jobs)
	if w := res.Wake; !w.IsZero() && w.After(now) && w.Before(a.placing.next) {
		a.placing.next = w
	}
	cand := t.state
	if objs := reconciler.JobPodObjects(t.state, res); len(objs) > 0 {
		cand = &specs.DesiredState{Objects: append(slices.Clone(t.state.Objects), objs...)}
	}
	b, err := json.Marshal(res.Records)
	if err != nil {
		a.log.Warn("encode the Job records", "err", err)
		return cand, prev, false
	}
	return cand, b, !bytes.Equal(b, prev) && !(len(prev) == 0 && string(b) == "{}")
}

// clusterJobPods are the Job pods of every live host, as each last
// reported them (this host's as last observed). A dead host's are left
// out: the controller makes them again (the scheduler moves them once the
// host's grace period ends).
func (a *Agent) clusterJobPods() []reconciler.ActualPod {
	out := slices.Clone(a.jobPods)
	for _, m := range a.cluster.Members() {
		if m.Self || m.State != gossip.StateAlive || !m.HasStatus {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) == nil {
			out = append(out, d.JobPods...)
		}
	}
	return out
}

// jobPodsOf returns the Job pods among actual's.
func jobPodsOf(actual reconciler.Actual) []reconciler.ActualPod {
	var out []reconciler.ActualPod
	for _, p := range actual.Pods {
		if p.Owner.Kind == specs.KindJob {
			out = append(out, p)
		}
	}
	return out
}

// adoptJobs takes the Job records published with a placement.
func (a *Agent) adoptJobs(b json.RawMessage) {
	var records reconciler.JobRecords
	if len(b) > 0 {
		if err := json.Unmarshal(b, &records); err != nil {
			a.log.Warn("the placement's Job records do not decode; running no new Job pod", "err", err)
			return
		}
	}
	a.placedJobs = records
}

// hostJobs is runJobs in a cluster: the Job pods of the placement's
// records that the placement gives this host.
func (a *Agent) hostJobs(t *target, actual reconciler.Actual) (reconciler.Desired, []string) {
	res := reconciler.SyncJobs(reconciler.JobsInput{State: t.state, Records: a.placedJobs, Pods: actual.Pods, Now: a.clock.Now()})
	mine := res.OnNode(a.cluster.Name(), a.placed.Assignments)
	if !a.cluster.Leader().Self {
		// What this host sees; the leader's status has the whole cluster's.
		a.jobStatus, a.cronStatus = res.Jobs, res.CronJobs
	}
	desired, clash := t.desired.WithJobs(mine)
	notices := make([]string, 0, len(mine.Notices)+len(clash))
	for _, n := range append(mine.Notices, clash...) {
		notices = append(notices, n.String())
	}
	return desired, notices
}
