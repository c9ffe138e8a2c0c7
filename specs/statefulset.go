package specs

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// StatefulSetPodName is the name of a StatefulSet's pod of the given
// ordinal: NAME-ORDINAL, as in Kubernetes. It is also the pod's host name.
func StatefulSetPodName(set string, ordinal int) string {
	return set + "-" + strconv.Itoa(ordinal)
}

// StatefulSetClaimName is the PersistentVolumeClaim that the volume claim
// template named template gives the pod of ordinal of StatefulSet set:
// TEMPLATE-SET-ORDINAL, as in Kubernetes.
func StatefulSetClaimName(template, set string, ordinal int) string {
	return template + "-" + StatefulSetPodName(set, ordinal)
}

// StatefulSetClaims returns the PersistentVolumeClaims of the pod of
// ordinal of the (defaulted) StatefulSet ss, one per volume claim
// template, in template order, in the StatefulSet's namespace.
func StatefulSetClaims(ss *appsv1.StatefulSet, ordinal int) []*corev1.PersistentVolumeClaim {
	out := make([]*corev1.PersistentVolumeClaim, 0, len(ss.Spec.VolumeClaimTemplates))
	for i := range ss.Spec.VolumeClaimTemplates {
		t := &ss.Spec.VolumeClaimTemplates[i]
		c := t.DeepCopy()
		c.APIVersion, c.Kind = "v1", KindPersistentVolumeClaim
		c.Name = StatefulSetClaimName(t.Name, ss.Name, ordinal)
		c.Namespace = ss.Namespace
		out = append(out, c)
	}
	return out
}

// StatefulSetPodTemplate returns the pod template of the pod of ordinal of
// ss: its template with, for each volume claim template, a volume of that
// name using the ordinal's claim (StatefulSetClaimName), which the
// containers mount by the template's name. ss is not modified.
func StatefulSetPodTemplate(ss *appsv1.StatefulSet, ordinal int) *corev1.PodTemplateSpec {
	if len(ss.Spec.VolumeClaimTemplates) == 0 {
		return &ss.Spec.Template
	}
	t := ss.Spec.Template.DeepCopy()
	for i := range ss.Spec.VolumeClaimTemplates {
		name := ss.Spec.VolumeClaimTemplates[i].Name
		t.Spec.Volumes = append(t.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: StatefulSetClaimName(name, ss.Name, ordinal)},
		}})
	}
	return t
}

// StatefulSetOrderedReady reports whether ss starts its pods one after
// another, each Ready before the next, and stops them in reverse order
// (podManagementPolicy OrderedReady, the default).
func StatefulSetOrderedReady(ss *appsv1.StatefulSet) bool {
	return ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
}
