package specs

import (
	"reflect"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Kind names accepted in manifests.
const (
	KindPod                   = "Pod"
	KindDeployment            = "Deployment"
	KindDaemonSet             = "DaemonSet"
	KindStatefulSet           = "StatefulSet"
	KindJob                   = "Job"
	KindCronJob               = "CronJob"
	KindService               = "Service"
	KindSecret                = "Secret"
	KindConfigMap             = "ConfigMap"
	KindPersistentVolumeClaim = "PersistentVolumeClaim"
	KindNamespace             = "Namespace"
	KindNetwork               = "Network"
)

// kindInfo describes one supported kind.
type kindInfo struct {
	apiVersion string
	kind       string
	namespaced bool
	typ        reflect.Type // the struct type (not a pointer)
}

// kinds maps a kind name to its description.
var kinds = map[string]kindInfo{
	KindPod:                   {"v1", KindPod, true, typeOf[corev1.Pod]()},
	KindDeployment:            {"apps/v1", KindDeployment, true, typeOf[appsv1.Deployment]()},
	KindDaemonSet:             {"apps/v1", KindDaemonSet, true, typeOf[appsv1.DaemonSet]()},
	KindStatefulSet:           {"apps/v1", KindStatefulSet, true, typeOf[appsv1.StatefulSet]()},
	KindJob:                   {"batch/v1", KindJob, true, typeOf[batchv1.Job]()},
	KindCronJob:               {"batch/v1", KindCronJob, true, typeOf[batchv1.CronJob]()},
	KindService:               {"v1", KindService, true, typeOf[corev1.Service]()},
	KindSecret:                {"v1", KindSecret, true, typeOf[corev1.Secret]()},
	KindConfigMap:             {"v1", KindConfigMap, true, typeOf[corev1.ConfigMap]()},
	KindPersistentVolumeClaim: {"v1", KindPersistentVolumeClaim, true, typeOf[corev1.PersistentVolumeClaim]()},
	KindNamespace:             {"v1", KindNamespace, false, typeOf[corev1.Namespace]()},
	KindNetwork:               {KelpieAPIVersion, KindNetwork, false, typeOf[Network]()},
}

// SupportedKinds lists "apiVersion Kind" for every kind kelpie accepts, sorted.
func SupportedKinds() []string {
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k.apiVersion+" "+k.kind)
	}
	sort.Strings(out)
	return out
}

// supportedKindList is SupportedKinds joined for error messages.
func supportedKindList() string {
	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
