package scheduler

import (
	"slices"
	"sort"
)

// A rolling update across hosts is paced by the leader: each host replaces
// a changed replica only when the leader allows it, so that a Deployment
// spread over N hosts has at most maxUnavailable replicas down in the whole
// cluster (and not maxUnavailable on each host). PaceRollouts is the
// leader's rule.

// RolloutReplica is one replica of a rolling Deployment, as the leader
// sees it.
type RolloutReplica struct {
	// ID is "NAMESPACE/NAME".
	ID string
	// Updated reports that the replica runs the desired template (its
	// host reported the desired spec hash for it).
	Updated bool
	// Available reports that its host reported it running with every
	// container ready.
	Available bool
}

// RolloutGroup is one rolling Deployment: its replicas in ordinal order
// and its budget (spec.strategy.rollingUpdate.maxUnavailable resolved,
// at least 1).
type RolloutGroup struct {
	Key            string
	MaxUnavailable int
	Replicas       []RolloutReplica
}

// PaceRollouts returns, per Deployment key, the replicas whose hosts may
// replace them now, given those allowed before (prev). A replica that is
// not available (down, or coming up) counts against the budget, and so
// does one allowed before that is not updated yet (its replacement is
// under way); the budget left allows the next replicas that are available
// and not updated, in ordinal order. A replica that is not available may
// always be replaced (that costs no availability), so it need not be
// allowed. Deployments with nothing left to replace are left out. The
// result is deterministic.
func PaceRollouts(groups []RolloutGroup, prev map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, g := range groups {
		before := map[string]bool{}
		for _, id := range prev[g.Key] {
			before[id] = true
		}
		var allowed []string
		busy := 0
		pendingUpdate := false
		for _, r := range g.Replicas {
			if !r.Updated {
				pendingUpdate = true
			}
			switch {
			case !r.Available:
				busy++
				if before[r.ID] && !r.Updated {
					allowed = append(allowed, r.ID) // still allowed: being replaced
				}
			case before[r.ID] && !r.Updated:
				busy++ // allowed, not replaced yet: its host is about to
				allowed = append(allowed, r.ID)
			}
		}
		if !pendingUpdate {
			continue
		}
		budget := max(g.MaxUnavailable, 1) - busy
		for _, r := range g.Replicas {
			if budget <= 0 {
				break
			}
			if r.Available && !r.Updated && !before[r.ID] {
				allowed = append(allowed, r.ID)
				budget--
			}
		}
		if len(allowed) > 0 {
			sort.Strings(allowed)
			out[g.Key] = slices.Compact(allowed)
		}
	}
	return out
}
