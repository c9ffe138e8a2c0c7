package agent

import (
	"context"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/source"
)

// Source is what the agent needs from the repository: the head of the
// tracked ref, and any commit it applied before. source.Remote implements
// it; tests use an in-memory fake.
//
// The agent calls it from its loop only, one call at a time. Calls must
// return promptly once ctx is done.
type Source interface {
	// Fetch brings the cache up to date and returns the head of the tracked
	// ref and its tree. applied is the commit the host runs ("" when none):
	// a head that does not descend from it is refused with an error
	// wrapping source.ErrNotFastForward (unless rewrites are allowed), an
	// unsigned or foreign-signed head with source.ErrUntrusted. Any other
	// error is transient.
	Fetch(ctx context.Context, applied string) (source.Fetched, error)
	// Commit returns a commit already in the cache, without fetching: the
	// agent re-reads the commit it applied before a restart with it.
	Commit(hash string) (source.Fetched, error)
}

// maintainer is a Source that compacts its cache now and then
// (source.Remote). The agent calls Maintain after a sync that fetched a new
// head.
type maintainer interface {
	Maintain(ctx context.Context) error
}

// descender is a Source that knows commit ancestry (source.Remote): a
// leader places only commits that descend from the cluster's.
type descender interface {
	Descends(ancestor, descendant string) (bool, error)
}

// Prober probes the containers of this host's pods and kills a container
// whose liveness or startup probe failed: host.Containerd implements it
// (exec through containerd; httpGet, tcpSocket and grpc from the host to
// the pod's address). The agent decides when to probe and what a result
// means (workload.Tracker); the Prober only makes one probe.
//
// Probe may be called concurrently for different containers. It returns
// within p.Timeout (a probe that takes longer is a failure, with output
// "timeout after 1s") or once ctx is done.
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

// Deps are the parts an agent drives: Open builds the real ones, tests pass
// fakes to New. Source and Runtime are required.
type Deps struct {
	// Source yields the commits to apply.
	Source Source
	// Runtime is the host: reconcilertest.Fake in tests, host.Containerd for
	// real. The agent observes it, plans and executes through it; it never
	// closes it.
	Runtime reconciler.Runtime
	// Events, when set, delivers a value whenever the runtime saw something
	// change on its own (a task exited, a container was deleted): the agent
	// checks the host for drift shortly after (Config.EventDelay), instead
	// of at the next DriftInterval. See WatchEvents.
	Events <-chan struct{}
	// Cluster, when set, makes the agent a member of a cluster
	// (gossip.Node): the elected leader places the replicas across the
	// members, and this host runs the ones placed on it, at the commit the
	// placement names. Nil runs every replica here (one host).
	Cluster Cluster
	// Routes, when set, programs this host's routes to the other hosts'
	// pod ranges (in a cluster). Nil routes nothing.
	Routes RouteSyncer
	// DataPath, when set, programs the Services' virtual IPs and node
	// ports and masquerades pod traffic leaving the cluster (kelpie's
	// nftables table). Nil programs nothing.
	DataPath DataPath
	// DNS, when set, starts the cluster DNS server on the pod bridge's
	// gateway once the host has a pod range. Nil serves no names.
	DNS StartDNS
	// Prober, when set, runs the containers' probes: readiness gates
	// rollouts and Services, liveness restarts. Nil runs no probes: a pod
	// is Ready when its containers run.
	Prober Prober
}
