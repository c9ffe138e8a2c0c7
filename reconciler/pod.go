package reconciler

import (
	"time"

	"github.com/kelpie-dev/kelpie/specs"
)

// Pod is one pod this host should run, fully resolved from its manifest:
// every reference (Secret, ConfigMap, named port, fieldRef, $(VAR)) is
// replaced by its value, so the runtime creates exactly what it describes
// and decides nothing.
//
// A Pod may hold Secret data (EnvVar.Secret, Projected.Secret): never log or
// print one. String methods of the parts that hold data redact it.
type Pod struct {
	// Namespace and Name identify the pod on this host.
	Namespace string
	Name      string
	// Owner is the workload the pod comes from.
	Owner Owner
	// Ordinal is the replica index of a Deployment's or StatefulSet's pod
	// (NAME-ORDINAL); 0 for the pods of other kinds.
	Ordinal int
	// Rollout is how the pod is replaced when its spec changes: the
	// Deployment's update strategy; zero for other kinds. It is not part of
	// Hash: changing the strategy replaces no pod.
	Rollout Rollout
	// Hash is the spec hash ("sha256:<hex>"): it covers the pod template,
	// the content of every ConfigMap and Secret the pod uses and the spec of
	// every Network it joins, but not the replica count. The runtime labels
	// the pod's objects with it (LabelSpecHash).
	Hash string
	// HostNetwork pods have no sandbox network namespace.
	HostNetwork bool
	// Networks are the extra Networks the pod joins besides the host's
	// default pod network, in the order of the kelpie.dev/networks annotation.
	Networks []string
	// RestartPolicy says which exited containers the planner restarts.
	RestartPolicy RestartPolicy
	// TerminationGracePeriod is how long containers get between SIGTERM and
	// SIGKILL when the pod is removed.
	TerminationGracePeriod time.Duration
	// Hostname is the pod's host name: its name, cut to 63 characters.
	Hostname string
	// Subdomain is a StatefulSet pod's governing Service (spec.serviceName):
	// the pod answers to HOSTNAME.SUBDOMAIN.NAMESPACE.svc.DOMAIN when that
	// Service is headless. "" for other pods.
	Subdomain string `json:",omitempty"`
	// Labels are the pod template's labels.
	Labels map[string]string
	// ServiceLinks is the pod's enableServiceLinks (true unless the
	// manifest says false): its containers get the variables of the
	// Services of its namespace (Desired.WithServiceEnv).
	ServiceLinks bool `json:",omitempty"`
	// FSGroup, when set, owns the pod's writable volumes and is added to
	// every container's supplemental groups (already included in
	// Security.SupplementalGroups).
	FSGroup *int64
	// Volumes are the pod's volumes, in manifest order.
	Volumes []Volume
	// InitContainers run one after another, each to successful completion,
	// before Containers start.
	InitContainers []Container
	// Containers run together in the pod's sandbox.
	Containers []Container
	// Privileges lists what the pod asks that weakens its isolation from the
	// host (host namespaces, privileged containers, added capabilities,
	// Unconfined seccomp), with manifest field paths. The runtime refuses
	// the pod unless the host grants every one.
	Privileges []specs.PrivilegeNeed `json:",omitempty"`
}

// Owner is the workload a pod comes from.
type Owner struct {
	// Kind is Deployment, DaemonSet, StatefulSet, Pod or Job (the pods of a CronJob
	// are owned by the Job of their tick).
	Kind string
	Name string
}

// String formats the owner as "Kind/name", the value of LabelOwner.
func (o Owner) String() string { return o.Kind + "/" + o.Name }

// RestartPolicy says which exited containers of a pod are restarted.
type RestartPolicy string

// Restart policies, as in Kubernetes.
const (
	// RestartAlways restarts every exited container, after back-off.
	RestartAlways RestartPolicy = "Always"
	// RestartOnFailure restarts containers that exited with a non-zero code.
	RestartOnFailure RestartPolicy = "OnFailure"
	// RestartNever restarts nothing.
	RestartNever RestartPolicy = "Never"
)

// PullPolicy says when the runtime pulls a container's image.
type PullPolicy string

// Image pull policies, as in Kubernetes.
const (
	// PullAlways pulls (or re-imports) before every container creation.
	PullAlways PullPolicy = "Always"
	// PullIfNotPresent uses the local image when there is one.
	PullIfNotPresent PullPolicy = "IfNotPresent"
	// PullNever only uses the local image and fails without one.
	PullNever PullPolicy = "Never"
)

// Container is one resolved container of a Pod.
type Container struct {
	Name  string
	Image string
	// PullPolicy is the defaulted imagePullPolicy.
	PullPolicy PullPolicy
	// Command replaces the image's entrypoint when non-empty; Args replace
	// its cmd when non-empty. $(VAR) references are already expanded.
	Command []string
	Args    []string
	// Env is the complete environment, resolved and deduplicated: envFrom
	// sources first, then env entries, a later definition replacing an
	// earlier one in place.
	Env []EnvVar
	// WorkingDir replaces the image's working directory when non-empty.
	WorkingDir string
	Ports      []Port
	Mounts     []Mount
	Resources  Resources
	Security   Security
	Probes     Probes
}

// EnvVar is one resolved environment variable.
type EnvVar struct {
	Name  string
	Value string
	// Secret reports that Value comes from a Secret: never log it.
	Secret bool
}

// String formats the variable as NAME=value, hiding a Secret's value.
func (e EnvVar) String() string {
	if e.Secret {
		return e.Name + "=<secret>"
	}
	return e.Name + "=" + e.Value
}

// Port is a container port; a non-zero HostPort is published on the host.
type Port struct {
	// Name is the port's optional name (probes refer to it, resolved already).
	Name          string
	ContainerPort int32
	HostPort      int32
	// Protocol is TCP, UDP or SCTP.
	Protocol string
}

// Mount places a pod volume in a container.
type Mount struct {
	// Volume names one of the pod's Volumes.
	Volume string
	// Path is the absolute path inside the container.
	Path string
	// SubPath, when set, mounts that relative path of the volume instead of
	// its root.
	SubPath string
	// ReadOnly is always true for ConfigMap and Secret volumes and for
	// claims mounted read-only.
	ReadOnly bool
}

// Resources are a container's limits and requests in plain units. A zero
// limit means none; a request defaults to the limit when the manifest
// gives a limit only, as in Kubernetes.
type Resources struct {
	// MemoryLimit is the cgroup memory limit in bytes.
	MemoryLimit int64
	// CPUMilli is the CPU limit in thousandths of a CPU.
	CPUMilli int64
	// CPURequestMilli is the requested CPU in thousandths of a CPU.
	CPURequestMilli int64
	// MemoryRequest is the requested memory in bytes.
	MemoryRequest int64
}

// Security is a container's security context with the pod's merged in (the
// container's own settings win).
type Security struct {
	// RunAsUser and RunAsGroup override the image's user and group when set.
	RunAsUser  *int64
	RunAsGroup *int64
	// RunAsNonRoot asks the runtime to refuse to start the container as uid 0.
	RunAsNonRoot bool
	// SupplementalGroups are extra groups of the container's process,
	// including the pod's fsGroup.
	SupplementalGroups     []int64
	ReadOnlyRootFilesystem bool
	// Privileged containers are refused by the runtime unless the host
	// allows them.
	Privileged bool
	// AllowPrivilegeEscalation sets no_new_privs when false; nil leaves the
	// runtime's default.
	AllowPrivilegeEscalation *bool
	// CapAdd and CapDrop are capability names as written ("NET_ADMIN", "ALL").
	CapAdd  []string
	CapDrop []string
	// SeccompUnconfined is set when the manifest's seccompProfile (the
	// container's, else the pod's) is Unconfined: the runtime applies no
	// seccomp filter. Otherwise it applies its default profile
	// (RuntimeDefault).
	SeccompUnconfined bool `json:",omitempty"`
}
