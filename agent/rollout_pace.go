package agent

import (
	"fmt"
	"maps"
	"slices"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
	"github.com/kelpie-dev/kelpie/specs"
)

// In a cluster the leader paces rolling updates (scheduler.PaceRollouts):
// it publishes, with the placement, the replicas whose hosts may replace
// them now; a host replaces a changed replica that serves only when it is
// allowed (PlanOptions.RolloutAllowed). The leader learns which replicas
// run the new template and are available from the hosts' status
// (nodeDetail.Revisions and Available).

// leaderRollouts computes the replicas allowed to be replaced now, from
// prev (the allowed sets of the placement in force: Rollouts and Surges)
// and the hosts' reports of the replicas that placement gives them. A
// Deployment that may surge is paced by scheduler.PaceSurges, the others
// by scheduler.PaceRollouts. It reports whether the result differs from
// prev.
func (a *Agent) leaderRollouts(t *target, prev, prevSurges map[string][]string, assignments map[string]string) (rollouts, surges map[string][]string, changed bool) {
	if t == nil {
		return prev, prevSurges, false
	}
	reported := a.reportedSlots(assignments)
	var groups []scheduler.RolloutGroup
	var surging []scheduler.SurgeGroup
	index, sindex := map[string]int{}, map[string]int{}
	// Every Deployment of the commit, whatever this host's labels: the
	// leader's own expansion leaves out a Deployment whose nodeSelector
	// does not match it, and its hosts would wait for it forever.
	for _, w := range a.rolloutWorkloads(t) {
		if w.Kind != specs.KindDeployment || !w.Rollout.Rolling {
			continue
		}
		key := w.Key()
		p := reconciler.Pod{Namespace: w.Namespace, Hash: w.Hash, Rollout: w.Rollout}
		for ord := range w.Replicas {
			id := reconciler.JoinName(w.Namespace, fmt.Sprintf("%s-%d", w.Name, ord))
			if w.Rollout.MaxSurge > 0 {
				surging = addSurgeSlot(surging, sindex, key, p, surgeSlot(id, w.Hash, reported[id]))
				continue
			}
			i, ok := index[key]
			if !ok {
				i = len(groups)
				index[key] = i
				groups = append(groups, scheduler.RolloutGroup{Key: key, MaxUnavailable: w.Rollout.MaxUnavailable})
			}
			groups[i].Replicas = append(groups[i].Replicas, rolloutReplica(id, w.Hash, reported[id]))
		}
	}
	groups = append(groups, a.daemonSetGroups(t)...)
	rollouts = scheduler.PaceRollouts(groups, prev)
	inPlace, surges := scheduler.PaceSurges(surging, prev, prevSurges)
	maps.Copy(rollouts, inPlace)
	same := maps.EqualFunc(rollouts, prev, slices.Equal[[]string]) && maps.EqualFunc(surges, prevSurges, slices.Equal[[]string])
	return rollouts, surges, !same
}

// revisions maps this host's pods ("ns/name") to the spec hash they run.
func (a *Agent) revisions() map[string]string {
	out := make(map[string]string, len(a.podHashes))
	maps.Copy(out, a.podHashes)
	return out
}

// availablePods lists this host's pods that run with every container
// ready, for their minReadySeconds (availableAt).
func (a *Agent) availablePods() []string {
	out, _ := a.availableAt(a.clock.Now())
	return out
}

// allowedOnThisHost turns the published allowed sets into the planner's
// RolloutAllowed: nil outside a cluster (each host paces itself).
func (a *Agent) allowedOnThisHost() map[string]bool {
	if a.cluster == nil {
		return nil
	}
	return flatten(a.placed.Rollouts)
}
