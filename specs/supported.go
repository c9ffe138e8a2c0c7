package specs

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// supportedFields lists, per Kubernetes type, the fields kelpie implements.
// A field the Go type has but this list omits is reported as "not supported
// by kelpie" instead of being silently ignored; a type missing from this map
// accepts all of its fields. The top-level "status" of every kind is ignored.
var supportedFields = map[reflect.Type][]string{
	typeOf[metav1.ObjectMeta](): {"name", "namespace", "labels", "annotations", "creationTimestamp"},

	typeOf[corev1.Pod]():             {"apiVersion", "kind", "metadata", "spec"},
	typeOf[corev1.PodTemplateSpec](): {"metadata", "spec"},
	typeOf[corev1.PodSpec](): {
		"containers", "initContainers", "volumes", "restartPolicy", "nodeSelector",
		"hostNetwork", "terminationGracePeriodSeconds", "securityContext",
	},
	typeOf[corev1.Container](): {
		"name", "image", "command", "args", "env", "envFrom", "workingDir", "ports",
		"volumeMounts", "resources", "livenessProbe", "readinessProbe", "startupProbe",
		"securityContext", "imagePullPolicy",
	},
	typeOf[corev1.EnvVar]():               {"name", "value", "valueFrom"},
	typeOf[corev1.EnvVarSource]():         {"fieldRef", "configMapKeyRef", "secretKeyRef"},
	typeOf[corev1.ObjectFieldSelector]():  {"apiVersion", "fieldPath"},
	typeOf[corev1.EnvFromSource]():        {"prefix", "configMapRef", "secretRef"},
	typeOf[corev1.ContainerPort]():        {"name", "containerPort", "hostPort", "protocol"},
	typeOf[corev1.VolumeMount]():          {"name", "mountPath", "readOnly", "subPath"},
	typeOf[corev1.ResourceRequirements](): {"limits", "requests"},
	typeOf[corev1.Probe](): {
		"exec", "httpGet", "tcpSocket", "initialDelaySeconds", "timeoutSeconds",
		"periodSeconds", "successThreshold", "failureThreshold",
	},
	typeOf[corev1.HTTPGetAction]():   {"path", "port", "host", "scheme", "httpHeaders"},
	typeOf[corev1.TCPSocketAction](): {"port", "host"},
	typeOf[corev1.SecurityContext](): {
		"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
		"privileged", "allowPrivilegeEscalation", "capabilities",
	},
	typeOf[corev1.PodSecurityContext](): {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups"},
	typeOf[corev1.Volume](): {
		"name", "emptyDir", "hostPath", "configMap", "secret", "persistentVolumeClaim",
	},
	typeOf[corev1.EmptyDirVolumeSource](): {"medium", "sizeLimit"},

	typeOf[appsv1.Deployment](): {"apiVersion", "kind", "metadata", "spec"},
	typeOf[appsv1.DeploymentSpec](): {
		"replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit",
	},
	typeOf[appsv1.DaemonSet]():     {"apiVersion", "kind", "metadata", "spec"},
	typeOf[appsv1.DaemonSetSpec](): {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"},

	typeOf[batchv1.Job](): {"apiVersion", "kind", "metadata", "spec"},
	typeOf[batchv1.JobSpec](): {
		"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
		"ttlSecondsAfterFinished", "template",
	},
	typeOf[batchv1.CronJob](): {"apiVersion", "kind", "metadata", "spec"},
	typeOf[batchv1.CronJobSpec](): {
		"schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy", "suspend",
		"jobTemplate", "successfulJobsHistoryLimit", "failedJobsHistoryLimit",
	},

	typeOf[corev1.Service]():     {"apiVersion", "kind", "metadata", "spec"},
	typeOf[corev1.ServiceSpec](): {"type", "clusterIP", "ports", "selector"},
	typeOf[corev1.ServicePort](): {"name", "protocol", "port", "targetPort", "nodePort"},

	typeOf[corev1.Secret]():    {"apiVersion", "kind", "metadata", "data", "stringData", "type"},
	typeOf[corev1.ConfigMap](): {"apiVersion", "kind", "metadata", "data", "binaryData"},

	typeOf[corev1.PersistentVolumeClaim]():      {"apiVersion", "kind", "metadata", "spec"},
	typeOf[corev1.PersistentVolumeClaimSpec]():  {"accessModes", "resources", "storageClassName"},
	typeOf[corev1.VolumeResourceRequirements](): {"limits", "requests"},

	typeOf[corev1.Namespace](): {"apiVersion", "kind", "metadata"},
}

// typeOf returns the reflect.Type of T.
func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }
