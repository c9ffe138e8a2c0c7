package specs

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// podBudget reports the object that takes the pods of the whole desired
// state past MaxPods. Objects whose own count is out of range were reported
// already and are not counted again.
func (l *loader) podBudget() {
	total := 0
	var over *item
	var overPath string
	for _, it := range l.items {
		n, p := podsOf(it.obj.Obj)
		if n < 0 || n > MaxReplicas {
			continue
		}
		total += n
		if total > MaxPods && over == nil {
			over, overPath = it, p
		}
	}
	if over != nil {
		l.errorAt(over, overPath, "the desired state asks for %d pods in all, more than the limit of %d; this %s passes it", total, MaxPods, over.obj.Kind)
	}
}

// podsOf returns how many pods a (defaulted) object may run at once, and
// the field that says so.
func podsOf(obj any) (int, string) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return int(deref32(o.Spec.Replicas, 1)), "spec.replicas"
	case *appsv1.DaemonSet:
		return 1, "spec" // one on each host
	case *appsv1.StatefulSet:
		return int(deref32(o.Spec.Replicas, 1)), "spec.replicas"
	case *corev1.Pod:
		return 1, "spec"
	case *batchv1.Job:
		return int(deref32(o.Spec.Parallelism, 1)), "spec.parallelism"
	case *batchv1.CronJob:
		return int(deref32(o.Spec.JobTemplate.Spec.Parallelism, 1)), "spec.jobTemplate.spec.parallelism"
	}
	return 0, ""
}

// deref32 returns *v, or def when v is nil.
func deref32(v *int32, def int32) int32 {
	if v == nil {
		return def
	}
	return *v
}
