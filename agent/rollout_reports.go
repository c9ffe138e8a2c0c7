package agent

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// hostReport is what one host reports of its pods: the spec hash each
// runs ("ns/name" → hash) and those that are available.
type hostReport struct {
	revisions map[string]string
	available map[string]bool
}

// has reports whether the host runs pod id at hash and it is available.
// For a Deployment's slot id ("ns/NAME-i") the pod may be the surge pod
// that replaced the slot's pod (reconciler.SurgeName), named after hash.
func (r hostReport) has(id, hash string) (updated, available bool) {
	h := r.revisions[id]
	if h != "" && h == hash {
		return true, r.available[id]
	}
	if ns, name, ok := strings.Cut(id, "/"); ok && hash != "" {
		surge := reconciler.JoinName(ns, reconciler.SurgeName(name, hash))
		if r.revisions[surge] == hash {
			return true, r.available[surge]
		}
	}
	return false, h != "" && r.available[id]
}

// hostReports maps each alive member (this node included, from its own
// observation) to what it reports of its pods (nodeDetail.Revisions and
// Available); outside a cluster, this host under the name "". Members
// whose status is missing or does not decode report nothing.
func (a *Agent) hostReports() map[string]hostReport {
	self := func() hostReport {
		r := hostReport{revisions: a.revisions(), available: map[string]bool{}}
		for _, id := range a.availablePods() {
			r.available[id] = true
		}
		return r
	}
	if a.cluster == nil {
		return map[string]hostReport{"": self()}
	}
	out := map[string]hostReport{}
	for _, m := range a.cluster.Members() {
		if m.State != gossip.StateAlive {
			continue
		}
		if m.Self {
			out[m.Name] = self()
			continue
		}
		if !m.HasStatus {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) != nil {
			continue
		}
		r := hostReport{revisions: d.Revisions, available: make(map[string]bool, len(d.Available))}
		for _, id := range d.Available {
			r.available[id] = true
		}
		out[m.Name] = r
	}
	return out
}

// availableAt lists this host's pods that are available at now: they
// run, are Ready, and have been for their workload's minReadySeconds
// (Rollout.MinReady of the target's pod of that name). It also returns
// when the first pod that is Ready, but not for long enough yet, becomes
// available (zero when none waits): the host reports again then.
func (a *Agent) availableAt(now time.Time) ([]string, time.Time) {
	minReady := map[string]time.Duration{}
	if a.target != nil {
		for _, p := range a.target.desired.Pods {
			if p.Rollout.MinReady > 0 {
				minReady[reconciler.JoinName(p.Namespace, p.Name)] = p.Rollout.MinReady
			}
		}
	}
	var out []string
	var wake time.Time
	for _, p := range a.pods {
		if p.State != "Running" || !p.PodReady {
			continue
		}
		id := reconciler.JoinName(p.Namespace, p.Name)
		if minReady := minReady[id]; minReady > 0 && !p.ReadySince.IsZero() {
			if at := p.ReadySince.Add(minReady); now.Before(at) {
				if wake.IsZero() || at.Before(wake) {
					wake = at
				}
				continue
			}
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out, wake
}

// aliveNodes are the members that are alive, as the scheduler sees them.
func (a *Agent) aliveNodes() []scheduler.Node {
	var out []scheduler.Node
	for _, n := range a.schedulerNodes() {
		if n.State == scheduler.NodeAlive {
			out = append(out, n)
		}
	}
	return out
}
