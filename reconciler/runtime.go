package reconciler

import (
	"context"
	"time"
)

// Runtime is what the executor needs from a host: package runtime/host
// implements it with containerd, CNI and the state dir (and says so with
// `var _ reconciler.Runtime = (*Containerd)(nil)`); reconcilertest.Fake implements it in
// memory for tests.
//
// Concurrency: Execute calls the methods concurrently for different
// subjects: different networks, claims and pods, and different containers
// of one pod (RestartContainer). It never runs two pod-level calls
// (CreatePod, RemovePod) for the same pod at once. Every method must return
// promptly once ctx is done.
//
// Crash safety: every mutating method is idempotent and may be interrupted
// at any instruction, the process killed included. Calling it again, or
// observing and planning again, must converge with no duplicate containers
// and no leaked network namespaces, IP allocations, mounts or snapshots.
// Everything a method creates carries LabelManaged and the other labels
// Observe needs to report it; nothing unlabelled is ever touched.
type Runtime interface {
	// Observe reports the host's actual state, derived only from objects
	// carrying LabelManaged. It changes nothing.
	Observe(ctx context.Context) (Actual, error)

	// EnsureNetwork creates network n, or converges an existing network of
	// that name to n, labelled with n.Hash. Calling it again is a no-op.
	EnsureNetwork(ctx context.Context, n Network) error

	// RemoveNetwork removes the named network's configuration and host
	// interfaces. It is called only when no pod uses the network; removing
	// a network that does not exist succeeds.
	RemoveNetwork(ctx context.Context, name string) error

	// EnsureClaim creates the local volume of c when it does not exist. An
	// existing volume and its data are left untouched.
	EnsureClaim(ctx context.Context, c Claim) error

	// CreatePod creates what is missing of p: its sandbox, volumes and
	// containers, runs init containers that have not completed (a failed
	// one is run again), and starts the app containers it created.
	// Containers that exist, running or not, are left as they are, so on a
	// complete pod CreatePod does nothing. It is called only when no pod of
	// that name exists with another spec hash, and only after the networks
	// and claims p uses exist.
	CreatePod(ctx context.Context, p Pod) error

	// RemovePod stops the pod's containers (SIGTERM, then SIGKILL after
	// grace) and removes them, its sandbox (CNI DEL even when the network
	// namespace is gone, then the namespace), its emptyDir volumes and
	// projected files. It never touches a claim's data. Removing a pod that
	// does not exist, or exists only in part, succeeds.
	RemovePod(ctx context.Context, namespace, name string, grace time.Duration) error

	// RestartContainer starts a new task for a container of p that is not
	// running (Exited or Created), counting the restart in LabelRestarts when
	// the container had run. A running container is left alone.
	RestartContainer(ctx context.Context, p Pod, container string) error
}
