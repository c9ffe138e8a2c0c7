package reconciler

import "strings"

// Labels kelpie puts on everything it creates (containerd containers and
// snapshots, CNI configurations, volume directories). The runtime derives
// the Actual state only from objects carrying LabelManaged; anything without
// it does not exist for the planner and is never touched.
const (
	// LabelManaged marks an object kelpie created; its value is ManagedValue.
	LabelManaged = "kelpie.dev/managed"
	// LabelPod names the pod an object belongs to, as "namespace/name"
	// (JoinName).
	LabelPod = "kelpie.dev/pod"
	// LabelSpecHash holds the spec hash the object was created from:
	// Pod.Hash on a pod's sandbox and containers, Network.Hash on a network.
	LabelSpecHash = "kelpie.dev/spec-hash"
	// LabelOwner names the workload of a pod, as "Kind/name" (Owner.String).
	LabelOwner = "kelpie.dev/owner"
	// LabelContainer names a container within its pod.
	LabelContainer = "kelpie.dev/container"
	// LabelInit is InitValue on init containers.
	LabelInit = "kelpie.dev/init"
	// LabelRestarts counts a container's restarts, in decimal.
	LabelRestarts = "kelpie.dev/restarts"
	// LabelRestartStreak counts the restarts since the container's restart
	// back-off last reset (a run of 10 minutes resets it), in decimal;
	// missing on containers made before it existed (Restarts stands in).
	LabelRestartStreak = "kelpie.dev/restart-streak"
	// LabelStartedAt is when the container's current or last task started
	// (RFC 3339), so that an exited container's run length is known.
	LabelStartedAt = "kelpie.dev/started-at"
	// LabelGracePeriod holds a pod's termination grace period in whole
	// seconds, so an obsolete pod is stopped as gently as it asked.
	LabelGracePeriod = "kelpie.dev/grace-period"
	// LabelPodNetworks lists, comma separated, the extra Networks a pod's
	// sandbox joined (Pod.Networks).
	LabelPodNetworks = "kelpie.dev/pod-networks"
	// LabelNetwork names the kelpie Network a CNI configuration implements.
	LabelNetwork = "kelpie.dev/network"
	// LabelClaim names the PersistentVolumeClaim a local volume holds, as
	// "namespace/name" (JoinName).
	LabelClaim = "kelpie.dev/claim"
)

// Label values.
const (
	// ManagedValue is the value of LabelManaged.
	ManagedValue = "true"
	// InitValue is the value of LabelInit.
	InitValue = "true"
)

// JoinName formats a namespaced name as "namespace/name", the value of
// LabelPod and LabelClaim.
func JoinName(namespace, name string) string { return namespace + "/" + name }

// SplitName parses a value written by JoinName. ok is false when v is not
// of the form "namespace/name" with both parts non-empty.
func SplitName(v string) (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(v, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return "", "", false
	}
	return namespace, name, true
}
