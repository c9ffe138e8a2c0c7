package agent

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/kelpie-dev/kelpie/gossip"
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
// prev (the allowed set of the placement in force) and the hosts' reports
// of the replicas that placement gives them. It reports whether the
// result differs from prev.
func (a *Agent) leaderRollouts(t *target, prev map[string][]string, assignments map[string]string) (map[string][]string, bool) {
	if t == nil {
		return prev, false
	}
	revisions, available := map[string]string{}, map[string]bool{}
	alive := map[string]bool{}
	for _, m := range a.cluster.Members() {
		if m.State != gossip.StateAlive {
			continue
		}
		alive[m.Name] = true
		if m.Self {
			for id, h := range a.revisions() {
				revisions[id] = h
			}
			for _, id := range a.availablePods() {
				available[id] = true
			}
			continue
		}
		if !m.HasStatus {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) != nil {
			continue
		}
		for id, h := range d.Revisions {
			if assignments[id] == m.Name {
				revisions[id] = h
			}
		}
		for _, id := range d.Available {
			if assignments[id] == m.Name {
				available[id] = true
			}
		}
	}
	var groups []scheduler.RolloutGroup
	index := map[string]int{}
	for _, p := range t.full.Pods {
		if p.Owner.Kind != "Deployment" || !p.Rollout.Rolling {
			continue
		}
		key := reconciler.JoinName(p.Namespace, p.Owner.Name)
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, scheduler.RolloutGroup{Key: key, MaxUnavailable: p.Rollout.MaxUnavailable})
		}
		id := reconciler.JoinName(p.Namespace, p.Name)
		node := assignments[id]
		groups[i].Replicas = append(groups[i].Replicas, scheduler.RolloutReplica{
			ID:        id,
			Updated:   revisions[id] == p.Hash,
			Available: alive[node] && available[id] && revisions[id] != "",
		})
	}
	groups = append(groups, a.daemonSetGroups(t)...)
	next := scheduler.PaceRollouts(groups, prev)
	return next, !maps.EqualFunc(next, prev, slices.Equal[[]string])
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
	out := map[string]bool{}
	for _, ids := range a.placed.Rollouts {
		for _, id := range ids {
			out[id] = true
		}
	}
	return out
}
