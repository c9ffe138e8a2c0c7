package reconciler

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
	"github.com/kelpie-dev/kelpie/workload"
)

// shortIdentity is a Job identity as its pods' names carry it: the first 5
// hex digits (workload.JobPodName).
func shortIdentity(identity string) string {
	name := workload.JobPodName("x", identity, 0, -1)
	return strings.TrimSuffix(strings.TrimPrefix(name, "x-"), "-0")
}

// parseJobPodName reads a pod name made by workload.JobPodName for the Job
// job: the identity's short form, the completion index (-1 for none) and
// the sequence number.
func parseJobPodName(job, pod string) (short string, index, seq int, ok bool) {
	rest, found := strings.CutPrefix(pod, job+"-")
	if !found {
		return "", 0, 0, false
	}
	parts := strings.Split(rest, "-")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return "", 0, 0, false
	}
	nums := make([]int, 0, 2)
	for _, s := range parts[1:] {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || strconv.Itoa(n) != s {
			return "", 0, 0, false
		}
		nums = append(nums, n)
	}
	index = -1
	if len(nums) == 2 {
		index = nums[0]
	}
	return parts[0], index, nums[len(nums)-1], true
}

// observeJobPod converts an observed pod of Job j for workload.SyncJob.
// A pod whose name is not one of the Job's (only a hand-made one) is
// left out (false); one of an earlier identity is reported with that
// identity, so SyncJob deletes it.
func observeJobPod(j workload.Job, a *ActualPod) (workload.JobPod, bool) {
	short, index, seq, ok := parseJobPodName(j.Name, a.Name)
	if !ok {
		return workload.JobPod{}, false
	}
	id := j.Identity
	if short != shortIdentity(j.Identity) {
		id = "earlier:" + short
	}
	spec := &j.Spec.Template.Spec
	inits := make([]string, len(spec.InitContainers))
	for i, c := range spec.InitContainers {
		inits[i] = c.Name
	}
	apps := make([]string, len(spec.Containers))
	for i, c := range spec.Containers {
		apps[i] = c.Name
	}
	o := jobPodState(a, RestartPolicy(spec.RestartPolicy), inits, apps)
	return workload.JobPod{
		Name: a.Name, Identity: id, Seq: seq, Index: index,
		Phase: o.Phase, Ready: o.Ready, Restarts: o.Restarts, Exits: o.Exits, FinishedAt: o.FinishedAt,
	}, true
}

// buildJobPod resolves the pod name of Job j, made from obj (the Job, or
// the CronJob of a tick's Job), with completion index index (-1 for a
// NonIndexed Job): as workload.SyncJob asks for it, JOB_COMPLETION_INDEX
// is in the environment of every container (before $(VAR) expansion, as
// in Kubernetes) and the hostname is NAME-INDEX, else the pod name.
func (c *jobController) buildJobPod(obj *specs.Object, j *workload.Job, name string, index int) (Pod, error) {
	tmpl := &j.Spec.Template
	host := name
	if index >= 0 {
		tmpl = tmpl.DeepCopy()
		env := corev1.EnvVar{Name: workload.CompletionIndexEnv, Value: strconv.Itoa(index)}
		for _, list := range [][]corev1.Container{tmpl.Spec.InitContainers, tmpl.Spec.Containers} {
			for i := range list {
				list[i].Env = append(list[i].Env, env)
			}
		}
		host = j.Name + "-" + strconv.Itoa(index)
	}
	jobObj := &specs.Object{APIVersion: "batch/v1", Kind: specs.KindJob, Namespace: j.Namespace, Name: j.Name, Pos: obj.Pos, Obj: obj.Obj, Hash: obj.Hash}
	b, err := newPodBuilder(c.in.State, jobObj, tmpl)
	if err != nil {
		return Pod{}, err
	}
	p, err := b.pod(name, 0)
	if err != nil {
		return Pod{}, err
	}
	for _, n := range b.notices {
		n.APIVersion, n.Key = obj.APIVersion, obj.Key()
		c.out.Notices = append(c.out.Notices, n)
	}
	p.Hostname = hostname(host)
	return p, nil
}

// WithJobs returns d with the Jobs' pods of r added and r's removals. A
// Job pod whose name another pod of d has already is left out, with a
// Notice.
func (d Desired) WithJobs(r JobsResult) (Desired, []Notice) {
	out := d
	out.Pods = append(make([]Pod, 0, len(d.Pods)+len(r.Pods)), d.Pods...)
	taken := make(map[string]bool, len(d.Pods))
	for _, p := range d.Pods {
		taken[JoinName(p.Namespace, p.Name)] = true
	}
	var notices []Notice
	for _, p := range r.Pods {
		key := JoinName(p.Namespace, p.Name)
		if taken[key] {
			notices = append(notices, Notice{APIVersion: "batch/v1", Key: specs.Key{Kind: specs.KindJob, Namespace: p.Namespace, Name: p.Owner.Name},
				Message: fmt.Sprintf("pod name %s is already used by another workload; not run", key)})
			continue
		}
		taken[key] = true
		out.Pods = append(out.Pods, p)
	}
	for _, rm := range r.Remove {
		if !taken[JoinName(rm.Namespace, rm.Name)] {
			out.Remove = append(out.Remove, rm)
		}
	}
	sort.SliceStable(out.Pods, func(i, j int) bool {
		return NamespacedLess(out.Pods[i].Namespace, out.Pods[i].Name, out.Pods[j].Namespace, out.Pods[j].Name)
	})
	return out, notices
}
