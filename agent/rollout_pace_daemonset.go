package agent

import (
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// The leader paces a DaemonSet's RollingUpdate across the hosts that run
// it as it paces a Deployment's (rollout_pace.go): its pods, one on each
// alive member whose labels its nodeSelector matches, are the replicas of
// one group whose budget is maxUnavailable of those hosts
// (scheduler.DaemonSetGroup). A host replaces its pod only once the
// leader allows it; a pod counts as available once its host reports it
// Ready for minReadySeconds (availableAt). A dead host is not counted: its
// pod serves nothing and cannot be replaced until it comes back.

// rolloutWorkloads returns the Deployments and DaemonSets of t,
// computed once per commit.
func (a *Agent) rolloutWorkloads(t *target) []reconciler.RolloutWorkload {
	c := &a.rollouts
	if t == nil {
		return nil
	}
	if c.commit != t.commit.Hash || c.workloads == nil {
		c.commit, c.workloads = t.commit.Hash, reconciler.RolloutWorkloads(t.state)
		if c.workloads == nil {
			c.workloads = []reconciler.RolloutWorkload{}
		}
	}
	return c.workloads
}

// daemonSetGroups are the rollout groups of t's rolling DaemonSets, from
// the hosts' reports; nil when t has none.
func (a *Agent) daemonSetGroups(t *target) []scheduler.RolloutGroup {
	var sets []reconciler.RolloutWorkload
	for _, w := range a.rolloutWorkloads(t) {
		if w.Kind == "DaemonSet" && w.Rollout.Rolling {
			sets = append(sets, w)
		}
	}
	if len(sets) == 0 || a.cluster == nil {
		return nil
	}
	reports := a.hostReports()
	nodes := a.aliveNodes()
	var groups []scheduler.RolloutGroup
	for _, w := range sets {
		var pods []scheduler.RolloutReplica
		for _, n := range nodes {
			if !scheduler.NodeSelectorMatches(w.NodeSelector, n) {
				continue
			}
			id := reconciler.JoinName(w.Namespace, reconciler.DaemonSetPodName(w.Name, n.Name))
			updated, available := reports[n.Name].has(id, w.Hash)
			pods = append(pods, scheduler.RolloutReplica{ID: id, Updated: updated, Available: available})
		}
		if len(pods) > 0 {
			groups = append(groups, scheduler.DaemonSetGroup(w.Key(), w.MaxUnavailable, pods))
		}
	}
	return groups
}
