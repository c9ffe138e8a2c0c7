package probes

import (
	"context"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// Prober probes the containers of a host's pods and kills a container
// whose liveness or startup probe failed: host.Containerd implements it
// (exec through containerd; httpGet, tcpSocket and grpc from the host to
// the pod's address). The engine decides when to probe and what a result
// means (workload.Tracker); the Prober only makes one probe.
//
// Probe may be called concurrently for different containers, and for
// different probes of one container. It returns within p.Timeout (a probe
// that takes longer is a failure, with output "timeout after 1s") or once
// ctx is done. KillContainer may be called concurrently with Probe.
type Prober interface {
	// Probe makes one probe p of container in pod (as Observe reported it:
	// its IP is the pod's address, "" for a hostNetwork pod, which is
	// probed on the host's loopback). ok is success; output says what
	// happened in a few words ("HTTP 503", "exit 1: <first line>",
	// "connection refused", "timeout after 1s", "NOT_SERVING").
	Probe(ctx context.Context, pod reconciler.ActualPod, container string, p reconciler.Probe) (ok bool, output string)
	// KillContainer stops the running task of container in the pod:
	// SIGTERM, then SIGKILL after grace. The container stays (Exited,
	// with its exit code); the restart policy decides what follows. A
	// container that does not run succeeds.
	KillContainer(ctx context.Context, namespace, pod, container string, grace time.Duration) error
}
