package specs

import (
	"net/netip"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// sortedKeys returns the keys of m in order.
func sortedKeys[K ~string, V any](m map[K]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	return keys
}

// labelSet adapts a map to labels.Labels.
func labelSet(m map[string]string) labels.Set { return labels.Set(m) }

// hasDataKey reports whether a Secret or ConfigMap holds key.
func hasDataKey(obj any, key string) bool {
	switch o := obj.(type) {
	case *corev1.Secret:
		_, ok := o.Data[key]
		if !ok {
			_, ok = o.StringData[key]
		}
		return ok
	case *corev1.ConfigMap:
		_, ok := o.Data[key]
		if !ok {
			_, ok = o.BinaryData[key]
		}
		return ok
	}
	return false
}

// firstHost returns the first usable address of a CIDR (the usual gateway).
func firstHost(cidr string) (string, bool) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return "", false
	}
	return p.Masked().Addr().Next().String(), true
}

// PodTemplate returns the pod template of a workload object (Deployment,
// DaemonSet, StatefulSet, Job, CronJob), or nil for other kinds. A Pod's own spec is
// returned as a template with the Pod's metadata.
func PodTemplate(obj any) *corev1.PodTemplateSpec {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &corev1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}
	case *appsv1.Deployment:
		return &o.Spec.Template
	case *appsv1.DaemonSet:
		return &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template
	case *batchv1.Job:
		return &o.Spec.Template
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template
	}
	return nil
}

// regexNote matches the regular-expression appendix of apimachinery's
// validation messages, which tells an operator nothing the example does not.
var regexNote = regexp.MustCompile(`,? regex used for validation is '.*'`)

// cleanMsgs shortens apimachinery validation messages.
func cleanMsgs(msgs []string) []string {
	for i, m := range msgs {
		m = regexNote.ReplaceAllString(m, "")
		msgs[i] = strings.ReplaceAll(m, ",  or ", ", or ")
	}
	return msgs
}
