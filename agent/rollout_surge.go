package agent

import (
	"encoding/json"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// A Deployment's replica is a slot ("NAMESPACE/NAME-ORDINAL"), which the
// placement gives a host; the host's pods for it are named NAME-ORDINAL or,
// when one was started beside the pod it replaces (maxSurge), with a hash
// suffix (reconciler.SurgeName). The leader paces rolling updates by slot,
// from the pods each host reports (nodeDetail.Revisions and Available).

// slotPod is a pod a host reports for a slot: the spec hash it runs and
// whether it is available (running, every container ready).
type slotPod struct {
	hash      string
	available bool
}

// reportedSlots maps each replica that assignments give a live member to
// the pods that member reports for it.
func (a *Agent) reportedSlots(assignments map[string]string) map[string][]slotPod {
	out := map[string][]slotPod{}
	add := func(node string, revisions map[string]string, available []string) {
		ready := make(map[string]bool, len(available))
		for _, id := range available {
			ready[id] = true
		}
		for id, h := range revisions {
			if h == "" {
				continue
			}
			slot := slotID(id, assignments)
			if assignments[slot] != node {
				continue
			}
			out[slot] = append(out[slot], slotPod{hash: h, available: ready[id]})
		}
	}
	for _, m := range a.cluster.Members() {
		if m.State != gossip.StateAlive {
			continue
		}
		if m.Self {
			add(m.Name, a.revisions(), a.availablePods())
			continue
		}
		if !m.HasStatus {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) != nil {
			continue
		}
		add(m.Name, d.Revisions, d.Available)
	}
	return out
}

// slotID is the replica a pod ("ns/name") holds: the pod itself when
// assignments place it, else the slot its surge name names.
func slotID(id string, assignments map[string]string) string {
	if _, ok := assignments[id]; ok {
		return id
	}
	ns, name, ok := reconciler.SplitName(id)
	if !ok {
		return id
	}
	if slot, ok := reconciler.SlotOf(name); ok {
		return reconciler.JoinName(ns, slot)
	}
	return id
}

// rolloutReplica is a replica of a Deployment that does not surge, as
// scheduler.PaceRollouts sees it: updated when one of its pods runs hash,
// available when that pod (else any of them) is.
func rolloutReplica(id, hash string, pods []slotPod) scheduler.RolloutReplica {
	r := scheduler.RolloutReplica{ID: id}
	for _, p := range pods {
		if p.hash == hash {
			r.Updated, r.Available = true, p.available
			return r
		}
		r.Available = r.Available || p.available
	}
	return r
}

// surgeSlot is a replica of a Deployment that may surge, as
// scheduler.PaceSurges sees it.
func surgeSlot(id, hash string, pods []slotPod) scheduler.SurgeSlot {
	s := scheduler.SurgeSlot{ID: id}
	for _, p := range pods {
		if p.hash == hash {
			s.New = true
			s.NewAvailable = s.NewAvailable || p.available
			continue
		}
		s.Old++
		if p.available {
			s.OldAvailable++
		}
	}
	return s
}

// addSurgeSlot adds slot s of pod p's Deployment (key) to groups, index
// mapping keys to their place in groups.
func addSurgeSlot(groups []scheduler.SurgeGroup, index map[string]int, key string, p reconciler.Pod, s scheduler.SurgeSlot) []scheduler.SurgeGroup {
	i, ok := index[key]
	if !ok {
		i = len(groups)
		index[key] = i
		groups = append(groups, scheduler.SurgeGroup{Key: key, Replicas: p.Rollout.Replicas,
			MaxUnavailable: p.Rollout.MaxUnavailable, MaxSurge: p.Rollout.MaxSurge})
	}
	groups[i].Slots = append(groups[i].Slots, s)
	return groups
}

// surgeAllowedOnThisHost turns the published surges into the planner's
// SurgeAllowed: nil outside a cluster (each host paces itself).
func (a *Agent) surgeAllowedOnThisHost() map[string]bool {
	if a.cluster == nil {
		return nil
	}
	return flatten(a.placed.Surges)
}

// flatten turns allowed sets into one set of replicas.
func flatten(sets map[string][]string) map[string]bool {
	out := map[string]bool{}
	for _, ids := range sets {
		for _, id := range ids {
			out[id] = true
		}
	}
	return out
}
