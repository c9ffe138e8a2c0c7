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
	// Notices are the planner's notes on the applied manifests: objects
	// that run nothing on this host, and why.
	Notices []string `json:"notices"`
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
}

// PodStatus is one pod on the host.
type PodStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// State is the pod's phase: Running, Pending, Succeeded or Failed.
	State string `json:"state"`
	// Ready is "running/total" containers.
	Ready string `json:"ready"`
	// Restarts adds up the containers' restarts.
	Restarts   int               `json:"restarts"`
	IP         string            `json:"ip,omitempty"`
	Containers []ContainerStatus `json:"containers"`
}

// ContainerStatus is one container of a pod.
type ContainerStatus struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	ExitCode int    `json:"exitCode,omitempty"`
	Restarts int    `json:"restarts"`
}

// podStatuses converts observed pods.
func podStatuses(pods []reconciler.ActualPod) []PodStatus {
	out := make([]PodStatus, 0, len(pods))
	for _, p := range pods {
		ps := PodStatus{Namespace: p.Namespace, Name: p.Name, IP: p.IP, Containers: make([]ContainerStatus, 0, len(p.Containers))}
		running := 0
		for _, c := range p.Containers {
			ps.Containers = append(ps.Containers, ContainerStatus{Name: c.Name, State: string(c.State), ExitCode: c.ExitCode, Restarts: c.Restarts})
			ps.Restarts += c.Restarts
			if c.State == reconciler.Running {
				running++
			}
		}
		ps.Ready = fmt.Sprintf("%d/%d", running, len(p.Containers))
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
