package agent

import (
	"maps"
	"slices"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
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
	for _, p := range t.full.Pods {
		if p.Owner.Kind != "Deployment" || !p.Rollout.Rolling {
			continue
		}
		key := reconciler.JoinName(p.Namespace, p.Owner.Name)
		id := reconciler.JoinName(p.Namespace, p.Name)
		if p.Rollout.MaxSurge > 0 {
			surging = addSurgeSlot(surging, sindex, key, p, surgeSlot(id, p.Hash, reported[id]))
			continue
		}
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, scheduler.RolloutGroup{Key: key, MaxUnavailable: p.Rollout.MaxUnavailable})
		}
		groups[i].Replicas = append(groups[i].Replicas, rolloutReplica(id, p.Hash, reported[id]))
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
