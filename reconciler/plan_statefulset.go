package reconciler

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie-dev/kelpie/specs"
)

// remotePoll is how soon a StatefulSet pod that waits for a pod of another
// host plans again: that pod's readiness reaches this host by gossip,
// which plans nothing by itself.
const remotePoll = 2 * time.Second

// statefulSets decides which pods of each StatefulSet wait, as Kubernetes'
// StatefulSet controller orders them, and adds them to held:
//
//   - OrderedReady: a missing pod is created only once every lower
//     ordinal is available (Ready for minReadySeconds), here or, in a
//     cluster, on another host (PlanOptions.ReadyElsewhere);
//   - RollingUpdate: changed pods of ordinals at or above the partition
//     are replaced one at a time, the highest first, and only while every
//     other pod of the set is available; pods below the partition keep
//     their template like OnDelete (planner.pod);
//   - there is never a surge: a pod is replaced under its own name, and
//     a pod another live host still reports is not created here.
func (p *planner) statefulSets(desired []Pod, actual map[string]*ActualPod, held map[string]rolloutWait) map[string]rolloutWait {
	groups := map[string][]*Pod{}
	var order []string
	for i := range desired {
		d := &desired[i]
		if !d.Rollout.Stateful {
			continue
		}
		g := JoinName(d.Namespace, d.Owner.Name)
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], d)
	}
	if len(order) == 0 {
		return held
	}
	if held == nil {
		held = map[string]rolloutWait{}
	}
	for _, g := range order {
		p.statefulSet(groups[g], actual, held)
	}
	return held
}

// statefulSet orders the pods of one StatefulSet on this host.
func (p *planner) statefulSet(pods []*Pod, actual map[string]*ActualPod, held map[string]rolloutWait) {
	sort.Slice(pods, func(i, j int) bool { return pods[i].Ordinal < pods[j].Ordinal })
	r := pods[0].Rollout
	local := map[int]*Pod{}
	for _, d := range pods {
		local[d.Ordinal] = d
	}
	// status of ordinal i: available, or why not (the pod it waits for).
	type status struct {
		ok      bool
		until   time.Time
		pending bool
		remote  bool
	}
	stat := func(i int) status {
		if d, ok := local[i]; ok {
			ok, at, pending := available(d, actual[JoinName(d.Namespace, d.Name)], p.opts.Now)
			return status{ok: ok, until: at, pending: pending}
		}
		if p.opts.ReadyElsewhere == nil {
			return status{ok: true} // one host: an ordinal it does not run runs nowhere
		}
		name := JoinName(pods[0].Namespace, specs.StatefulSetPodName(pods[0].Owner.Name, i))
		return status{ok: p.opts.ReadyElsewhere[name], remote: true}
	}
	hold := func(d *Pod, blocker int, s status, reason string) {
		w := rolloutWait{reason: reason, until: s.until, pending: s.pending}
		if b, ok := local[blocker]; ok {
			w.group = []string{JoinName(b.Namespace, b.Name)}
		}
		if s.remote {
			w.until = p.opts.Now.Add(remotePoll)
		}
		held[JoinName(d.Namespace, d.Name)] = w
	}
	set := pods[0].Owner.Name
	// Never a second copy: a pod another live host still runs is created
	// here once that host no longer reports it.
	for _, d := range pods {
		key := JoinName(d.Namespace, d.Name)
		if _, there := p.opts.ReadyElsewhere[key]; there && actual[key] == nil {
			held[key] = rolloutWait{reason: "StatefulSet: another host still runs " + d.Name + "; created here once it is gone there", until: p.opts.Now.Add(remotePoll)}
		}
	}
	// Creation in order.
	if r.OrderedReady {
		for _, d := range pods {
			if _, done := held[JoinName(d.Namespace, d.Name)]; done || actual[JoinName(d.Namespace, d.Name)] != nil {
				continue
			}
			for j := 0; j < d.Ordinal; j++ {
				if s := stat(j); !s.ok {
					hold(d, j, s, fmt.Sprintf("podManagementPolicy OrderedReady: waits for %s to be Ready", specs.StatefulSetPodName(set, j)))
					break
				}
			}
		}
	}
	if r.OnDelete {
		return
	}
	// Rolling update: the highest changed ordinal at or above the
	// partition, while every other pod is available.
	var changed []*Pod
	for _, d := range pods {
		if a := actual[JoinName(d.Namespace, d.Name)]; a != nil && a.Hash != "" && a.Hash != d.Hash && d.Ordinal >= r.Partition {
			changed = append(changed, d)
		}
	}
	if len(changed) == 0 {
		return
	}
	top := changed[len(changed)-1]
	last := max(pods[len(pods)-1].Ordinal, r.Replicas-1)
	for j := 0; j <= last; j++ {
		if j == top.Ordinal {
			continue
		}
		name := specs.StatefulSetPodName(set, j)
		if d := local[j]; d != nil {
			if a := actual[JoinName(d.Namespace, d.Name)]; a != nil && a.Hash != d.Hash && j < top.Ordinal {
				continue // changed itself (or kept by the partition): waits its turn, available or not
			}
		} else if p.opts.ReadyElsewhere != nil && j > top.Ordinal {
			// A higher ordinal on another host goes first: it must run
			// the new template there, and be Ready.
			if h := p.opts.HashElsewhere[JoinName(top.Namespace, name)]; h != top.Hash {
				hold(top, j, status{remote: true}, fmt.Sprintf("rolling update: one pod at a time, the highest ordinal first; waits for %s to be updated", name))
				break
			}
		}
		if s := stat(j); !s.ok {
			hold(top, j, s, fmt.Sprintf("rolling update: one pod at a time, the highest ordinal first; waits for %s to be Ready", name))
			break
		}
	}
	for _, d := range changed[:len(changed)-1] {
		hold(d, top.Ordinal, stat(top.Ordinal), fmt.Sprintf("rolling update: one pod at a time, the highest ordinal first; waits for %s", top.Name))
	}
}

// removalWait is why an obsolete StatefulSet pod is not removed yet: the
// higher ordinal removed first, here or on another host (remote).
type removalWait struct {
	after  string
	remote bool
}

// statefulRemovals picks, among the obsolete pods (keys of actual pods no
// longer desired here), those of StatefulSets that must wait: with
// OrderedReady (or when the set left the manifests) pods go from the
// highest ordinal down, one per plan, so only each set's highest obsolete
// pod is removed now. In a cluster (PlanOptions.StatefulReplicas), a pod
// that a scale down removes (its ordinal is at or above the replica count)
// also waits while another host reports a higher ordinal of its set; one
// the leader moved away does not.
func (p *planner) statefulRemovals(obsolete []string, desired []Pod, actual map[string]*ActualPod) map[string]removalWait {
	parallel := map[string]bool{}
	for i := range desired {
		if d := &desired[i]; d.Rollout.Stateful && !d.Rollout.OrderedReady {
			parallel[JoinName(d.Namespace, d.Owner.Name)] = true
		}
	}
	top := map[string]string{}
	ord := map[string]int{}
	for _, key := range obsolete {
		a := actual[key]
		if a.Owner.Kind != specs.KindStatefulSet || parallel[JoinName(a.Namespace, a.Owner.Name)] {
			continue
		}
		i, ok := ordinalOf(a.Name, a.Owner.Name)
		if !ok {
			continue
		}
		ord[key] = i
		g := JoinName(a.Namespace, a.Owner.Name)
		if t, ok := top[g]; !ok || i > ord[t] {
			top[g] = key
		}
	}
	waits := map[string]removalWait{}
	for key, i := range ord {
		a := actual[key]
		g := JoinName(a.Namespace, a.Owner.Name)
		if t := top[g]; t != key {
			waits[key] = removalWait{after: t}
			continue
		}
		if p.opts.StatefulReplicas == nil || i < p.opts.StatefulReplicas[g] {
			continue // one host, or moved away: nothing to wait for elsewhere
		}
		higher, hj := "", -1
		for other := range p.opts.ReadyElsewhere {
			ns, name, _ := SplitName(other)
			if j, ok := ordinalOf(name, a.Owner.Name); ok && ns == a.Namespace && j > i && j > hj {
				higher, hj = other, j
			}
		}
		if higher != "" {
			waits[key] = removalWait{after: higher, remote: true}
		}
	}
	return waits
}

// ordinalOf parses the ordinal of a StatefulSet's pod named SET-ORDINAL.
func ordinalOf(name, set string) (int, bool) {
	rest, ok := strings.CutPrefix(name, set+"-")
	if !ok || !isOrdinal(rest) {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil
}
