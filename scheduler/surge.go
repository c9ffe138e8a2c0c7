package scheduler

import (
	"slices"
	"sort"
)

// A Deployment whose pods may surge (maxSurge above 0) is paced by the
// leader with Kubernetes' two bounds for the whole cluster: at most
// replicas+maxSurge of its pods exist, and at most maxUnavailable of its
// replicas are unavailable. A replica is a slot (NAME-ORDINAL) on one
// host; its host creates the new pod beside the old one when the leader
// allows it a surge, deletes the old pod and creates the new one when the
// leader allows it in place, and deletes the old pod by itself once the
// new one is available. PaceSurges is the leader's rule.

// SurgeSlot is one replica of a Deployment that may surge, as the hosts
// report it.
type SurgeSlot struct {
	// ID is the replica, "NAMESPACE/SLOT".
	ID string
	// Old counts the slot's pods that run an older template, and
	// OldAvailable those of them that are available.
	Old, OldAvailable int
	// New reports that a pod of the slot runs the desired template, and
	// NewAvailable that it is available.
	New, NewAvailable bool
}

// SurgeGroup is one rolling Deployment that may surge: its replicas in
// ordinal order and its budgets resolved against Replicas (MaxSurge at
// least 1; MaxUnavailable may be 0).
type SurgeGroup struct {
	Key            string
	Replicas       int
	MaxUnavailable int
	MaxSurge       int
	Slots          []SurgeSlot
}

// PaceSurges returns, per Deployment key, the replicas whose hosts may
// replace them in place now (inPlace) and those that may start their new
// pod beside the old one (surge), given those allowed before (prevInPlace,
// prevSurge). It counts the Deployment's pods (every old and new pod the
// hosts report, one for a replica without any, which its host creates at
// once, and one for each surge allowed before whose new pod is not
// reported yet) against Replicas+MaxSurge, and its available replicas
// (a slot with an available pod, less each in-place replacement allowed
// before whose old pod still serves) against Replicas-MaxUnavailable.
// Then, in ordinal order, each replica whose available pod runs an older
// template and has no new pod is allowed a surge while the pod count is
// under its bound, else in place while the available count is above its
// bound; the first that fits neither stops the walk. A replica that does
// not serve, or has no pod, needs no permission (its host replaces or
// creates it at once: that costs no availability). Deployments with
// nothing allowed are left out; the result is deterministic.
func PaceSurges(groups []SurgeGroup, prevInPlace, prevSurge map[string][]string) (inPlace, surge map[string][]string) {
	inPlace, surge = map[string][]string{}, map[string][]string{}
	for _, g := range groups {
		wasInPlace, wasSurge := set(prevInPlace[g.Key]), set(prevSurge[g.Key])
		pods, avail := 0, 0
		var place, more []string
		var todo []SurgeSlot
		for _, s := range g.Slots {
			n := s.Old
			if s.New {
				n++
			}
			pods += max(n, 1) // a slot without a pod gets one at once

			serving := s.NewAvailable || s.OldAvailable > 0
			if serving {
				avail++
			}
			if s.New || s.OldAvailable == 0 {
				continue // replaced, or free to replace
			}
			switch {
			case wasSurge[s.ID]:
				pods++ // its host is about to start the new pod
				more = append(more, s.ID)
			case wasInPlace[s.ID]:
				avail-- // its host is about to stop the old pod
				place = append(place, s.ID)
			default:
				todo = append(todo, s)
			}
		}
		for _, s := range todo {
			if pods < g.Replicas+g.MaxSurge {
				pods++
				more = append(more, s.ID)
			} else if avail > g.Replicas-g.MaxUnavailable {
				avail--
				place = append(place, s.ID)
			} else {
				break
			}
		}
		if len(place) > 0 {
			sort.Strings(place)
			inPlace[g.Key] = slices.Compact(place)
		}
		if len(more) > 0 {
			sort.Strings(more)
			surge[g.Key] = slices.Compact(more)
		}
	}
	return inPlace, surge
}

// set turns a list into a set.
func set(ids []string) map[string]bool {
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}
