package reconciler

import "time"

// Actual is what the runtime observed on the host, derived only from
// objects carrying LabelManaged. Order does not matter to Plan.
type Actual struct {
	Pods     []ActualPod
	Networks []ActualNetwork
	Claims   []ActualClaim
}

// ActualPod is a pod kelpie created earlier, as found on the host.
type ActualPod struct {
	Namespace string
	Name      string
	// Owner is the workload the pod comes from (LabelOwner); zero when
	// the runtime has no record of it. The Job controller finds a Job's
	// pods by it.
	Owner Owner
	// Hash is the spec hash shared by the pod's sandbox and containers
	// (LabelSpecHash). When they disagree, as after an interrupted replace,
	// the runtime reports "" and Plan replaces the pod.
	Hash string
	// SandboxReady reports that the pod's sandbox is complete: its network
	// namespace joined to its networks (hostNetwork pods have none) and its
	// volume directories in place.
	SandboxReady bool
	// IP is the pod's address on the default network; "" when unknown.
	IP string
	// HostNetwork reports that the pod runs in the host's network
	// namespace (it has no IP of its own): its network probes go to the
	// host's loopback.
	HostNetwork bool
	// Networks are the extra Networks the sandbox joined (LabelPodNetworks).
	Networks []string
	// GracePeriod is the termination grace period the pod was created with
	// (LabelGracePeriod); Plan stops an obsolete or replaced pod with it. A
	// runtime that has no record reports 30s, the Kubernetes default (0
	// would mean SIGKILL at once).
	GracePeriod time.Duration
	// Containers lists the pod's init and app containers that exist, and
	// those the runtime knows are gone (State Missing).
	Containers []ActualContainer
	// ReadyKnown reports that Ready, ReadySince and the containers' Ready
	// say whether the pod is Ready: a probe engine (package probes) that
	// runs the containers' probes filled them in. The runtime leaves them
	// unset; without them the planner counts a pod whose app containers
	// run as Ready.
	ReadyKnown bool
	// Ready is the pod's Ready condition: every app container runs and is
	// Ready (its readiness probe passed; a container without one once it
	// runs and its startup probe, if any, passed).
	Ready bool
	// ReadySince is when the pod last became Ready; zero when it is not
	// Ready (or the time is unknown). A rolling update counts a pod
	// available minReadySeconds after it.
	ReadySince time.Time
}

// ActualContainer is one container of an ActualPod.
type ActualContainer struct {
	Name  string
	State ContainerState
	// ExitCode is the last exit code of an Exited container.
	ExitCode int
	// Restarts counts how often the container was restarted (LabelRestarts).
	Restarts int
	// Streak counts the restarts since the back-off last reset
	// (LabelRestartStreak): the next restart of a container whose streak is
	// 0 is at once.
	Streak int
	// FinishedAt is when an Exited container stopped; zero when unknown,
	// which Plan treats as long ago.
	FinishedAt time.Time
	// StartedAt is when a Running container's task started, or when an
	// Exited container's last run did (LabelStartedAt); zero when unknown,
	// which Plan treats as long ago for a Running container and as a short
	// run for an Exited one. Without readiness (ActualPod.ReadyKnown), a
	// rolling update counts a pod available only minReadySeconds after its
	// containers started.
	StartedAt time.Time
	// Ready is the container's Ready condition when the pod's ReadyKnown
	// is set (always false for init containers).
	Ready bool
}

// ContainerState is the state of an actual container.
type ContainerState string

// Container states.
const (
	// Running: the container's task runs.
	Running ContainerState = "Running"
	// Exited: the task ran and stopped; ExitCode and FinishedAt say how and when.
	Exited ContainerState = "Exited"
	// Created: the container exists but its task never started.
	Created ContainerState = "Created"
	// Missing: the container is gone although its pod exists.
	Missing ContainerState = "Missing"
)

// ActualNetwork is a kelpie Network found on the host.
type ActualNetwork struct {
	Name string
	// Hash is the Network.Hash it was created from.
	Hash string
}

// ActualClaim is a claim's local volume found on the host.
type ActualClaim struct {
	Namespace string
	Name      string
}
