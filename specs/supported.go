package specs

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// supportedFields lists, per struct type, the fields kelpie implements. It
// is deny-by-default: a field the Go type has but this list omits is
// reported as "not supported by kelpie" instead of being silently ignored,
// and a struct type missing from this map has no supported field at all.
// Every struct type reachable from a supported kind through supported fields
// must be listed (TestSupportedFieldsCoverReachableTypes walks them), so a
// new k8s.io/api release cannot add a field that loads and is then dropped.
// The top-level "status" of every kind is ignored.
var supportedFields = map[reflect.Type][]string{
	typeOf[metav1.ObjectMeta](): {"name", "namespace", "labels", "annotations", "creationTimestamp"},

	typeOf[corev1.Pod]():             {"apiVersion", "kind", "metadata", "spec"},
	typeOf[corev1.PodTemplateSpec](): {"metadata", "spec"},
	typeOf[corev1.PodSpec](): {
		"containers", "initContainers", "volumes", "restartPolicy", "nodeSelector",
		"hostNetwork", "terminationGracePeriodSeconds", "securityContext", "enableServiceLinks",
	},
	typeOf[corev1.Container](): {
		"name", "image", "command", "args", "env", "envFrom", "workingDir", "ports",
		"volumeMounts", "resources", "livenessProbe", "readinessProbe", "startupProbe",
		"securityContext", "imagePullPolicy",
	},
	typeOf[corev1.EnvVar]():               {"name", "value", "valueFrom"},
	typeOf[corev1.EnvVarSource]():         {"fieldRef", "configMapKeyRef", "secretKeyRef"},
	typeOf[corev1.ObjectFieldSelector]():  {"apiVersion", "fieldPath"},
	typeOf[corev1.ConfigMapKeySelector](): {"name", "key", "optional"},
	typeOf[corev1.SecretKeySelector]():    {"name", "key", "optional"},
	typeOf[corev1.EnvFromSource]():        {"prefix", "configMapRef", "secretRef"},
	typeOf[corev1.ConfigMapEnvSource]():   {"name", "optional"},
	typeOf[corev1.SecretEnvSource]():      {"name", "optional"},
	typeOf[corev1.ContainerPort]():        {"name", "containerPort", "hostPort", "protocol"},
	typeOf[corev1.VolumeMount]():          {"name", "mountPath", "readOnly", "subPath"},
	typeOf[corev1.ResourceRequirements](): {"limits", "requests"},
	typeOf[corev1.Probe](): {
		"exec", "httpGet", "tcpSocket", "grpc", "initialDelaySeconds", "timeoutSeconds",
		"periodSeconds", "successThreshold", "failureThreshold", "terminationGracePeriodSeconds",
	},
	typeOf[corev1.ExecAction](): {"command"},
	// host is left out of httpGet and tcpSocket: a probe reaches the pod's
	// own address only, so a committer cannot make the agent connect to
	// an arbitrary address.
	typeOf[corev1.HTTPGetAction]():   {"path", "port", "scheme", "httpHeaders"},
	typeOf[corev1.HTTPHeader]():      {"name", "value"},
	typeOf[corev1.TCPSocketAction](): {"port"},
	typeOf[corev1.GRPCAction]():      {"port", "service"},
	typeOf[corev1.SecurityContext](): {
		"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
		"privileged", "allowPrivilegeEscalation", "capabilities", "seccompProfile",
	},
	typeOf[corev1.Capabilities](): {"add", "drop"},
	// localhostProfile is left out: Localhost profiles are not supported.
	typeOf[corev1.SeccompProfile](): {"type"},
	typeOf[corev1.PodSecurityContext](): {
		"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups", "seccompProfile",
	},
	typeOf[corev1.Volume](): {
		"name", "emptyDir", "hostPath", "configMap", "secret", "persistentVolumeClaim",
	},
	typeOf[corev1.EmptyDirVolumeSource](): {"medium", "sizeLimit"},
	typeOf[corev1.HostPathVolumeSource](): {"path", "type"},
	// defaultUser and items[].user (alpha in k8s.io/api) are left out.
	typeOf[corev1.ConfigMapVolumeSource]():             {"name", "items", "defaultMode", "optional"},
	typeOf[corev1.SecretVolumeSource]():                {"secretName", "items", "defaultMode", "optional"},
	typeOf[corev1.KeyToPath]():                         {"key", "path", "mode"},
	typeOf[corev1.PersistentVolumeClaimVolumeSource](): {"claimName", "readOnly"},

	typeOf[metav1.LabelSelector]():            {"matchLabels", "matchExpressions"},
	typeOf[metav1.LabelSelectorRequirement](): {"key", "operator", "values"},

	typeOf[appsv1.Deployment](): {"apiVersion", "kind", "metadata", "spec"},
	typeOf[appsv1.DeploymentSpec](): {
		"replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit",
		"progressDeadlineSeconds",
	},
	typeOf[appsv1.DeploymentStrategy]():      {"type", "rollingUpdate"},
	typeOf[appsv1.RollingUpdateDeployment](): {"maxSurge", "maxUnavailable"},
	typeOf[appsv1.DaemonSet]():               {"apiVersion", "kind", "metadata", "spec"},
	typeOf[appsv1.DaemonSetSpec]():           {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"},
	typeOf[appsv1.DaemonSetUpdateStrategy](): {"type", "rollingUpdate"},
	typeOf[appsv1.RollingUpdateDaemonSet]():  {"maxUnavailable", "maxSurge"},
	// ordinals (a start other than 0) and rollingUpdate.maxUnavailable
	// (alpha in Kubernetes: one pod at a time here) are left out.
	typeOf[appsv1.StatefulSet](): {"apiVersion", "kind", "metadata", "spec"},
	typeOf[appsv1.StatefulSetSpec](): {
		"replicas", "selector", "template", "volumeClaimTemplates", "serviceName",
		"podManagementPolicy", "updateStrategy", "revisionHistoryLimit", "minReadySeconds",
		"persistentVolumeClaimRetentionPolicy",
	},
	typeOf[appsv1.StatefulSetUpdateStrategy]():                       {"type", "rollingUpdate"},
	typeOf[appsv1.RollingUpdateStatefulSetStrategy]():                {"partition"},
	typeOf[appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy](): {"whenDeleted", "whenScaled"},

	typeOf[batchv1.Job](): {"apiVersion", "kind", "metadata", "spec"},
	typeOf[batchv1.JobSpec](): {
		"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
		"ttlSecondsAfterFinished", "template", "podFailurePolicy", "completionMode",
	},
	typeOf[batchv1.CronJob]():         {"apiVersion", "kind", "metadata", "spec"},
	typeOf[batchv1.JobTemplateSpec](): {"metadata", "spec"},
	typeOf[batchv1.CronJobSpec](): {
		"schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy", "suspend",
		"jobTemplate", "successfulJobsHistoryLimit", "failedJobsHistoryLimit",
	},

	// A Job's podFailurePolicy: onPodConditions only with DisruptionTarget
	// (validation refuses other conditions).
	typeOf[batchv1.PodFailurePolicy]():                       {"rules"},
	typeOf[batchv1.PodFailurePolicyRule]():                   {"action", "onExitCodes", "onPodConditions"},
	typeOf[batchv1.PodFailurePolicyOnExitCodesRequirement](): {"containerName", "operator", "values"},
	typeOf[batchv1.PodFailurePolicyOnPodConditionsPattern](): {"type", "status"},

	typeOf[corev1.Service](): {"apiVersion", "kind", "metadata", "spec"},
	typeOf[corev1.ServiceSpec](): {
		"type", "clusterIP", "ports", "selector",
		"sessionAffinity", "sessionAffinityConfig", "externalTrafficPolicy",
		"loadBalancerSourceRanges", "allocateLoadBalancerNodePorts",
	},
	typeOf[corev1.ServicePort]():           {"name", "protocol", "port", "targetPort", "nodePort"},
	typeOf[corev1.SessionAffinityConfig](): {"clientIP"},
	typeOf[corev1.ClientIPConfig]():        {"timeoutSeconds"},

	typeOf[corev1.Secret]():    {"apiVersion", "kind", "metadata", "data", "stringData", "type"},
	typeOf[corev1.ConfigMap](): {"apiVersion", "kind", "metadata", "data", "binaryData"},

	typeOf[corev1.PersistentVolumeClaim]():      {"apiVersion", "kind", "metadata", "spec"},
	typeOf[corev1.PersistentVolumeClaimSpec]():  {"accessModes", "resources", "storageClassName"},
	typeOf[corev1.VolumeResourceRequirements](): {"limits", "requests"},

	typeOf[corev1.Namespace](): {"apiVersion", "kind", "metadata"},

	typeOf[Network]():     {"apiVersion", "kind", "metadata", "spec"},
	typeOf[NetworkSpec](): {"type", "subnet", "gateway", "master", "isolated"},
}

// typeOf returns the reflect.Type of T.
func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }
