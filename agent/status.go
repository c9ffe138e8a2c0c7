package agent

import (
	"fmt"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// Pod phases, as Kubernetes names them, for status and kelpie_pods.
var podPhases = []string{"Running", "Pending", "Succeeded", "Failed"}

// Status is what /api/v1/status returns and `kelpie status` prints: what
// the agent follows, what the host runs, and what went wrong.
type Status struct {
	// Node is this host's name.
	Node string `json:"node"`
	// Repo lists the repository URLs, the origin first.
	Repo []string `json:"repo"`
	// Ref and Path are the tracked ref and the manifests' directory.
	Ref  string `json:"ref"`
	Path string `json:"path"`
	// Applied is the commit the host converged to last; nil before the first.
	Applied *AppliedCommit `json:"applied"`
	// Pending is the head while the host does not run it, and why.
	Pending *PendingCommit `json:"pending"`
	// LastError is the most recent failure, nil when all is well.
	LastError *SyncError `json:"lastError"`
	// LastSync is the most recent sync; nil before the first ends.
	LastSync *SyncInfo `json:"lastSync"`
	// Pods are the pods kelpie runs on this host, as last observed.
	Pods []PodStatus `json:"pods"`
	// Waiting lists what waits for a restart back-off or a new spec.
	Waiting []string `json:"waiting"`
	// Stalled lists the Deployments whose rollout made no progress for
	// their progressDeadlineSeconds (in a cluster, anywhere in it).
	Stalled []RolloutStall `json:"stalled,omitempty"`
	// Workloads are the Deployments, DaemonSets and StatefulSets of the
	// commit in force with their desired, updated and ready pods (in a
	// cluster, across it) and their health.
	Workloads []WorkloadStatus `json:"workloads,omitempty"`
	// Alerts are what is wrong now, as this node alerts on it (firing
	// since); Notifications the last alerts that fired or resolved,
	// newest first.
	Alerts        []AlertStatus        `json:"alerts,omitempty"`
	Notifications []NotificationStatus `json:"notifications,omitempty"`
	// Notices are the planner's notes on the applied manifests: objects
	// that run nothing on this host, and why.
	Notices []string `json:"notices"`
	// PodRange is the slice of the cluster pod range this host numbers its
	// pods in ("" before it has one, or when its runtime numbers pods its
	// own way); PodRangeWait says why it has none yet.
	PodRange     string `json:"podRange,omitempty"`
	PodRangeWait string `json:"podRangeWait,omitempty"`
	// Routes are this host's routes to the other hosts' pod ranges, as
	// last programmed; Unrouted the live peers it cannot reach, and why.
	Routes   []string `json:"routes,omitempty"`
	Unrouted []string `json:"unrouted,omitempty"`
	// Jobs and CronJobs are the Jobs (of the manifests and of CronJobs) and
	// the CronJobs this host runs, as the Job controller last saw them.
	Jobs     []reconciler.JobStatus     `json:"jobs,omitempty"`
	CronJobs []reconciler.CronJobStatus `json:"cronJobs,omitempty"`
	// Services are the Services of the commit in force with their virtual
	// IPs, node ports and ready endpoints anywhere in the cluster.
	Services []ServiceStatus `json:"services,omitempty"`
	// DataPath says what this host's nftables table programs, or why it
	// does not; DNS where the cluster DNS listens, or why it does not. ""
	// when the agent runs neither.
	DataPath string `json:"dataPath,omitempty"`
	DNS      string `json:"dns,omitempty"`
	// Cluster is the cluster view; nil for an agent on its own.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// SyncInfo describes one sync.
type SyncInfo struct {
	// Seq numbers the syncs since the agent started, from 1.
	Seq int `json:"seq"`
	// Time is when it ended.
	Time time.Time `json:"time"`
	// Reason is what triggered it: start, poll, retry, api, SIGHUP, a ref
	// watch or webhook reason.
	Reason string `json:"reason"`
	// Result is ok, refused or failed.
	Result string `json:"result"`
	// Commit is the head it saw ("" when the fetch failed).
	Commit string `json:"commit,omitempty"`
	// Actions counts the actions it executed.
	Actions int `json:"actions"`
	// Seconds is how long it took.
	Seconds float64 `json:"seconds"`
	// Phases split Seconds.
	Phases SyncPhases `json:"phases"`
	// Source is the repository URL the fetch used ("cache" when none was
	// needed); Skipped says why the URLs before it were passed over.
	Source  string   `json:"source,omitempty"`
	Skipped []string `json:"skipped,omitempty"`
}

// SyncPhases is how long each phase of a sync took, in seconds: the fetch
// (the ref check, and the new objects when there are any), validating the
// manifests of a new head, observing the host and planning, and executing
// the plan. A phase that did not run is 0.
type SyncPhases struct {
	Fetch    float64 `json:"fetch"`
	Validate float64 `json:"validate"`
	Plan     float64 `json:"plan"`
	Apply    float64 `json:"apply"`
}

// PodStatus is one pod on the host.
type PodStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// State is the pod's phase: Running, Pending, Succeeded or Failed.
	State string `json:"state"`
	// Ready is "ready/total" app containers, as kubectl's READY column: a
	// container is ready when it runs and its readiness probe passed (or
	// it has none, and its startup probe, if any, passed).
	Ready string `json:"ready"`
	// PodReady is the pod's Ready condition: every app container is ready.
	// Rollouts wait for it and Services send traffic only to Ready pods.
	PodReady bool `json:"podReady"`
	// ReadySince is when the pod last became Ready (zero when it is not).
	ReadySince time.Time `json:"readySince,omitzero"`
	// Restarts adds up the containers' restarts.
	Restarts   int               `json:"restarts"`
	IP         string            `json:"ip,omitempty"`
	Containers []ContainerStatus `json:"containers"`
}

// ContainerStatus is one container of a pod.
type ContainerStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Ready is the container's Ready condition (false for init containers).
	Ready    bool `json:"ready"`
	ExitCode int  `json:"exitCode,omitempty"`
	Restarts int  `json:"restarts"`
}

// podStatuses converts observed pods, whose readiness is filled in
// (probes.Engine.Observe or probes.Unprobed). The init containers of the
// desired pod of that name do not count in Ready's total; for a pod not
// desired, the containers that exited 0 are taken for init containers.
func podStatuses(pods []reconciler.ActualPod, desired []reconciler.Pod) []PodStatus {
	init := map[string]bool{} // "ns/pod/container"
	for _, d := range desired {
		for _, c := range d.InitContainers {
			init[reconciler.JoinName(d.Namespace, d.Name)+"/"+c.Name] = true
		}
	}
	known := map[string]bool{}
	for _, d := range desired {
		known[reconciler.JoinName(d.Namespace, d.Name)] = true
	}
	out := make([]PodStatus, 0, len(pods))
	for _, p := range pods {
		key := reconciler.JoinName(p.Namespace, p.Name)
		ps := PodStatus{Namespace: p.Namespace, Name: p.Name, IP: p.IP, Containers: make([]ContainerStatus, 0, len(p.Containers)),
			PodReady: p.Ready, ReadySince: p.ReadySince}
		ready, total := 0, 0
		for _, c := range p.Containers {
			ps.Containers = append(ps.Containers, ContainerStatus{Name: c.Name, State: string(c.State), Ready: c.Ready, ExitCode: c.ExitCode, Restarts: c.Restarts})
			ps.Restarts += c.Restarts
			switch {
			case init[key+"/"+c.Name]:
			case c.Ready:
				ready++
				total++
			case known[key] || c.State != reconciler.Exited || c.ExitCode != 0:
				total++
			}
		}
		ps.Ready = fmt.Sprintf("%d/%d", ready, total)
		ps.State = podPhase(p)
		out = append(out, ps)
	}
	return out
}

// podPhase names a pod's phase: Running while a container runs; once all
// exited, Succeeded when all exited 0, else Failed; Pending otherwise
// (sandbox or containers not yet there).
func podPhase(p reconciler.ActualPod) string {
	if !p.SandboxReady || len(p.Containers) == 0 {
		return "Pending"
	}
	exited, failed := 0, 0
	for _, c := range p.Containers {
		switch c.State {
		case reconciler.Running:
			return "Running"
		case reconciler.Exited:
			exited++
			if c.ExitCode != 0 {
				failed++
			}
		}
	}
	switch {
	case exited < len(p.Containers):
		return "Pending"
	case failed > 0:
		return "Failed"
	}
	return "Succeeded"
}

// ClusterStatus is the cluster as this node sees it (a clustered agent
// only).
type ClusterStatus struct {
	// Self is this node's name.
	Self string `json:"self"`
	// Leader and Term are the leader this node follows and its term; Leader
	// is "" while none is known.
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
	// Election is the election's last reason.
	Election string `json:"election,omitempty"`
	// Quorum says whether placement changes may be made, and why.
	Quorum QuorumStatus `json:"quorum"`
	// Guarantee says plainly what holds at the moment about leadership.
	Guarantee string `json:"guarantee"`
	// Placement is the placement in force; nil before any.
	Placement *PlacementStatus `json:"placement"`
	// Note says why the leader did not publish a placement, when it did not.
	Note string `json:"note,omitempty"`
	// Members are the nodes of the view, sorted by name.
	Members []MemberStatus `json:"members"`
}

// QuorumStatus is gossip's quorum rule applied to the view.
type QuorumStatus struct {
	OK     bool   `json:"ok"`
	Expect int    `json:"expect,omitempty"`
	Alive  int    `json:"alive"`
	Needed int    `json:"needed,omitempty"`
	Reason string `json:"reason"`
}

// PlacementStatus is the placement in force.
type PlacementStatus struct {
	Term   uint64 `json:"term"`
	Seq    uint64 `json:"seq"`
	Leader string `json:"leader"`
	Commit string `json:"commit"`
	// Replicas counts the placed replicas.
	Replicas int `json:"replicas"`
	// Unplaceable lists "REPLICA: REASON" for replicas no node took.
	Unplaceable []string `json:"unplaceable,omitempty"`
	// Waiting lists "REPLICA on NODE" for replicas waiting on a dead node.
	Waiting []string `json:"waiting,omitempty"`
}

// MemberStatus is one node of the cluster.
type MemberStatus struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"`
	State string `json:"state"`
	// Since is when the state last changed (zero when unknown).
	Since    time.Time         `json:"since,omitzero"`
	Labels   map[string]string `json:"labels,omitempty"`
	Version  string            `json:"version,omitempty"`
	Eligible bool              `json:"eligible"`
	Leader   bool              `json:"leader"`
	// Commit, PodsRunning, PodsReady and Ready are the node's last status.
	Commit      string `json:"commit,omitempty"`
	PodsRunning int    `json:"podsRunning"`
	PodsReady   int    `json:"podsReady"`
	Ready       bool   `json:"ready"`
	// Pods are the replicas the placement gives the node.
	Pods []string `json:"pods"`
	// PodRange is the node's slice of the cluster pod range in the
	// allocation in force ("" when it has none).
	PodRange string `json:"podRange,omitempty"`
}
