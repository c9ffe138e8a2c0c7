package reconciler

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// statefulSet expands a StatefulSet: spec.replicas pods NAME-0 …, each
// with host name NAME-ORDINAL and, under a serviceName, that Service as
// its subdomain; each volume claim template gives each pod its own claim
// TEMPLATE-NAME-ORDINAL, listed in Desired.Claims with the pods that use
// it. Claims of ordinals at or above replicas are not listed, and never
// deleted: a plan deletes no claim, so scaling down keeps their data.
func (e *expander) statefulSet(obj *specs.Object, o *appsv1.StatefulSet) {
	replicas := 1
	if o.Spec.Replicas != nil {
		replicas = int(*o.Spec.Replicas)
	}
	before := len(e.desired.Pods)
	e.workloadWith(obj, &o.Spec.Template, replicas, statefulRollout(o, replicas), func(b *podBuilder, i int, p *Pod) {
		if p != nil {
			p.Subdomain = o.Spec.ServiceName
			return
		}
		b.tmpl = specs.StatefulSetPodTemplate(o, i)
		b.claims = map[string]*corev1.PersistentVolumeClaim{}
		for _, c := range specs.StatefulSetClaims(o, i) {
			b.claims[c.Name] = c
		}
	})
	for _, p := range e.desired.Pods[before:] {
		for _, c := range specs.StatefulSetClaims(o, p.Ordinal) {
			e.desired.Claims = append(e.desired.Claims, claimOf(c))
		}
	}
}

// statefulRollout is how a StatefulSet's pods start, stop and change
// (plan_statefulset.go); replicas is its replica count.
func statefulRollout(o *appsv1.StatefulSet, replicas int) Rollout {
	r := Rollout{
		Stateful:     true,
		Replicas:     replicas,
		OrderedReady: specs.StatefulSetOrderedReady(o),
		MinReady:     time.Duration(o.Spec.MinReadySeconds) * time.Second,
	}
	switch o.Spec.UpdateStrategy.Type {
	case appsv1.OnDeleteStatefulSetStrategyType:
		r.OnDelete = true
	default:
		if ru := o.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			r.Partition = int(*ru.Partition)
		}
	}
	return r
}
