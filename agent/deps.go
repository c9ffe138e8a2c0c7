package agent

import (
	"context"

	"github.com/kelpie-dev/kelpie/probes"
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
// whose liveness or startup probe failed: host.Containerd implements it.
// It is probes.Prober, which states its contract; the agent runs a
// probes.Engine over it, which decides when to probe and what a result
// means (workload.Tracker).
type Prober = probes.Prober

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
	// is Ready when its app containers run.
	Prober Prober
}
