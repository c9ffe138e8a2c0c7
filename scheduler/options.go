package scheduler

import (
	"errors"
	"fmt"
	"time"
)

// DefaultRescheduleAfter is how long a dead node keeps its replicas before
// they move, and what --reschedule-after defaults to. memberlist declares a
// node dead only after its suspicion timeout (2.8 s on three hosts with
// `--gossip-profile fast`, the default, 7 s with lan; a blip it recovers
// from never gets that far), so the grace period adds to that. Measured on
// three hosts (bench/cluster.sh), host loss to replacements running took a
// median of 36.5 s with 30 s and lan, 10-12 s with 5 s and lan; 3 s with
// fast keeps it under 8 s. A site that reboots hosts often and would rather
// wait sets more.
const DefaultRescheduleAfter = 3 * time.Second

// ErrStaleTerm is returned by Place when asked to place for a term lower
// than the previous placement's: a leader that has been superseded must
// not publish placements.
var ErrStaleTerm = errors.New("stale term")

// Options configure one Place.
type Options struct {
	// Term is the placing leader's term; 0 keeps the previous placement's
	// term (for previews such as `kelpie plan --cluster`).
	Term uint64
	// Commit is the commit the desired state was loaded from; the placement
	// names it so every host runs the same commit.
	Commit string
	// Now is the current time, injected; required.
	Now time.Time
	// RescheduleAfter is how long after Node.DownSince a dead node's
	// replicas move; 0 means DefaultRescheduleAfter. Use a tiny positive
	// value (1ns) to move them at once.
	RescheduleAfter time.Duration
	// Rebalance moves replicas back towards an even spread when a node
	// returns or joins (--rebalance): one replica per workload per
	// placement, only for workloads whose replicas are all Settled, never
	// a replica bound to a claim. Off, replicas stay where they run.
	Rebalance bool
	// Settled holds the replicas ("NAMESPACE/NAME") that run and are
	// available on the node the previous placement gave them, from the
	// nodes' status; rebalancing waits for a workload's to be all there.
	Settled map[string]bool
}

// validate fills zero values and rejects nonsense.
func (o *Options) validate() error {
	if o.Now.IsZero() {
		return errors.New("options: Now is required (inject the clock)")
	}
	switch {
	case o.RescheduleAfter == 0:
		o.RescheduleAfter = DefaultRescheduleAfter
	case o.RescheduleAfter < 0:
		return fmt.Errorf("options: RescheduleAfter must be positive, got %s", o.RescheduleAfter)
	}
	return nil
}
