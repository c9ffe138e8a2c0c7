package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/specs"
)

// cronTriggerTimeout bounds how long POST …/trigger waits for the loop,
// which may be in the middle of a long sync.
const cronTriggerTimeout = 60 * time.Second

// cronRequest is a `kelpie cron trigger` on its way to the loop.
type cronRequest struct {
	namespace, name string
	reply           chan cronReply // buffered: the loop never blocks on it
}

// cronReply is the loop's answer: the Job made, or why not (code is the
// HTTP status).
type cronReply struct {
	job  string
	code int
	err  error
}

// runJobs runs the Job controller for t at now on the observed pods: it
// stores the new records (before any pod they ask for is created) and
// returns what the host should run, t's pods and the Jobs', with the Job
// notices. In a cluster Jobs are not run yet: each gets a notice.
func (a *Agent) runJobs(t *target, actual reconciler.Actual, now time.Time) (reconciler.Desired, []string) {
	if t.state == nil {
		return t.desired, nil
	}
	a.jobPods = jobPodsOf(actual)
	if a.cluster != nil {
		return a.hostJobs(t, actual)
	}
	res := reconciler.SyncJobs(reconciler.JobsInput{State: t.state, Records: a.jobs, Pods: actual.Pods, Now: now, Host: &a.cfg.Host})
	if !sameRecords(res.Records, a.jobs) {
		if err := SaveJobRecords(a.cfg.JobsPath(), res.Records); err != nil {
			// Nothing the records would not know of may start: keep the
			// pods that exist, create none, and try again at the next check.
			a.log.Error("cannot save the Job records; no Job pod is started until they are saved", "err", err)
			res = withoutCreations(res)
			res.Records = a.jobs
		}
	}
	if !sameRecords(res.Records, a.jobs) || len(res.Events) > 0 {
		for _, e := range res.Events {
			a.log.Info("job", "object", e.Kind+" "+reconciler.JoinName(e.Namespace, e.Name), "event", e.Message)
		}
	}
	a.jobs = res.Records
	a.jobsWake = res.Wake
	a.jobStatus, a.cronStatus = res.Jobs, res.CronJobs
	a.metrics.setJobs(res.Jobs)
	desired, clash := t.desired.WithJobs(res)
	notices := make([]string, 0, len(res.Notices)+len(clash))
	for _, n := range append(res.Notices, clash...) {
		notices = append(notices, n.String())
	}
	return desired, notices
}

// withoutCreations drops the pods r would create.
func withoutCreations(r reconciler.JobsResult) reconciler.JobsResult {
	create := map[string]bool{}
	for _, k := range r.Create {
		create[k] = true
	}
	var pods []reconciler.Pod
	for _, p := range r.Pods {
		if !create[reconciler.JoinName(p.Namespace, p.Name)] {
			pods = append(pods, p)
		}
	}
	r.Pods, r.Create = pods, nil
	return r
}

// wakeForJobs brings the next check forward to the Job controller's
// wake-up (a back-off, deadline, TTL or CronJob tick).
func (a *Agent) wakeForJobs(now time.Time) {
	if w := a.jobsWake; !w.IsZero() && w.After(now) && w.Before(a.nextCheck) {
		a.nextCheck = w
	}
}

// triggerCron adds the Job of `kelpie cron trigger` to the records and
// asks for a check at once, which starts it.
func (a *Agent) triggerCron(req cronRequest) cronReply {
	switch {
	case a.cluster != nil && !a.cluster.Leader().Self:
		return cronReply{code: http.StatusConflict, err: fmt.Errorf("this host does not lead the cluster: trigger the CronJob on the leader, %q (kelpie cron trigger --agent URL-OF-THE-LEADER)", a.cluster.Leader().Leader)}
	case a.target == nil || a.target.state == nil:
		return cronReply{code: http.StatusServiceUnavailable, err: errors.New("the agent has applied no manifests yet")}
	}
	now := a.clock.Now()
	base := a.jobs
	if a.cluster != nil {
		base = a.placedJobs
		if a.jobTrigger != nil {
			base = *a.jobTrigger
		}
	}
	recs, job, err := reconciler.TriggerCronJob(a.target.state, base, req.namespace, req.name, now)
	if err != nil {
		code := http.StatusConflict
		if errors.Is(err, reconciler.ErrNoCronJob) {
			code = http.StatusNotFound
		}
		return cronReply{code: code, err: err}
	}
	if a.cluster != nil {
		// The leader publishes the new records with its next placement,
		// which places the Job's pods.
		a.jobTrigger = &recs
		a.clusterDue = true
		a.log.Info("job", "object", specs.KindCronJob+" "+reconciler.JoinName(req.namespace, req.name), "event", "triggered by hand: Job "+job)
		return cronReply{job: job, code: http.StatusCreated}
	}
	if err := SaveJobRecords(a.cfg.JobsPath(), recs); err != nil {
		return cronReply{code: http.StatusInternalServerError, err: err}
	}
	a.jobs = recs
	a.nextCheck = now
	a.log.Info("job", "object", specs.KindCronJob+" "+reconciler.JoinName(req.namespace, req.name), "event", "triggered by hand: Job "+job)
	return cronReply{job: job, code: http.StatusCreated}
}

// cronTrigger serves POST /api/v1/cronjobs/{namespace}/{name}/trigger: it
// hands the request to the loop and answers {"job": NAME} (201).
func (a *Agent) cronTrigger(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), cronTriggerTimeout)
	defer cancel()
	req := cronRequest{namespace: r.PathValue("namespace"), name: r.PathValue("name"), reply: make(chan cronReply, 1)}
	select {
	case a.cronReqs <- req:
	case <-ctx.Done():
		http.Error(w, "the agent's loop is busy; try again", http.StatusServiceUnavailable)
		return
	}
	select {
	case rep := <-req.reply:
		if rep.err != nil {
			http.Error(w, rep.err.Error(), rep.code)
			return
		}
		writeJSON(w, rep.code, map[string]string{"job": rep.job, "namespace": req.namespace, "cronJob": req.name})
	case <-ctx.Done():
		http.Error(w, fmt.Sprintf("no answer from the agent's loop within %s", cronTriggerTimeout), http.StatusServiceUnavailable)
	}
}
