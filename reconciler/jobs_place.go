package reconciler

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// JobPodObjects returns the pods of res (the Job pods to run, in a
// cluster) as bare Pod objects with their Job's pod template, so that the
// scheduler places them as it places any pod: by nodeSelector, requests,
// host ports and claims, and sticky once placed. state is the desired
// state res was computed from: a pod's template is its manifest Job's, or
// for a Job a CronJob made (named in res.Records), the CronJob's.
func JobPodObjects(state *specs.DesiredState, res JobsResult) []*specs.Object {
	if state == nil || len(res.Pods) == 0 {
		return nil
	}
	templates := map[string]*corev1.PodTemplateSpec{}
	for _, obj := range state.Objects {
		switch o := obj.Obj.(type) {
		case *batchv1.Job:
			templates[JoinName(obj.Namespace, obj.Name)] = &o.Spec.Template
		case *batchv1.CronJob:
			for _, run := range res.Records.CronJobs[JoinName(obj.Namespace, obj.Name)].Jobs {
				templates[JoinName(obj.Namespace, run.Name)] = &o.Spec.JobTemplate.Spec.Template
			}
		}
	}
	out := make([]*specs.Object, 0, len(res.Pods))
	for _, p := range res.Pods {
		tmpl := templates[JoinName(p.Namespace, p.Owner.Name)]
		if tmpl == nil {
			continue
		}
		pod := &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: specs.KindPod},
			ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels},
			Spec:       tmpl.Spec,
		}
		out = append(out, &specs.Object{APIVersion: "v1", Kind: specs.KindPod, Namespace: p.Namespace, Name: p.Name, Obj: pod})
	}
	return out
}

// OnNode keeps the part of res that node runs in a cluster: the pods the
// placement's assignments give it. Removals are left out: a Job pod the
// leader no longer places is pruned like any pod no longer placed here.
func (r JobsResult) OnNode(node string, assignments map[string]string) JobsResult {
	out := r
	out.Pods, out.Create, out.Remove = nil, nil, nil
	for _, p := range r.Pods {
		if assignments[JoinName(p.Namespace, p.Name)] == node {
			out.Pods = append(out.Pods, p)
		}
	}
	for _, k := range r.Create {
		if assignments[k] == node {
			out.Create = append(out.Create, k)
		}
	}
	return out
}
