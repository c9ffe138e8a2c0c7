package scheduler

import (
	"fmt"
	"sort"
	"strings"
)

// bindVolumes decides, for each claim of the desired state, which node
// holds its data. A binding from the previous placement stands while its
// node is a member, whatever other nodes report (a new volume may not have
// reached gossip yet; a stale copy elsewhere must not move the replica).
// Otherwise the node that reports the claim in Node.Volumes holds it; when
// several do, the first by name, with a warning. A claim nobody holds is
// bound later, to the node its first replica is placed on.
//
// Removing a PersistentVolumeClaim from the desired state drops its
// binding (its data stays on disk): that is how an operator releases a
// claim whose node is gone for good.
func (p *placer) bindVolumes(claims []string, previous *Placement) {
	holders := map[string][]string{}
	for i := range p.nodes { // sorted by name
		for _, c := range p.nodes[i].Volumes {
			holders[c] = append(holders[c], p.nodes[i].Name)
		}
	}
	for _, c := range claims {
		hs := holders[c]
		if previous != nil {
			if node, ok := previous.Volumes[c]; ok {
				if _, member := p.index[node]; member || len(hs) == 0 {
					p.volumes[c] = node
					continue
				}
				p.report.Warnings = append(p.report.Warnings, fmt.Sprintf("volume claim %s: bound to node %s, which is not a member any more; node %s holds its data and takes it", c, node, hs[0]))
			}
		}
		if len(hs) == 0 {
			continue
		}
		if len(hs) > 1 {
			p.report.Warnings = append(p.report.Warnings, fmt.Sprintf("volume claim %s: data found on nodes %s; using %s", c, strings.Join(hs, ", "), hs[0]))
		}
		p.volumes[c] = hs[0]
	}
}

// pin returns the node holding w's bound claims and the first claim bound
// there. conflict is set when the claims are bound to different nodes.
// node is "" when w uses no bound claim.
func (p *placer) pin(w *workload) (node, claim, conflict string) {
	var where []string
	for _, c := range w.claims {
		n, ok := p.volumes[c]
		if !ok {
			continue
		}
		if node == "" {
			node, claim = n, c
		} else if n != node {
			where = append(where, fmt.Sprintf("%s (on %s)", c, n))
		}
	}
	if len(where) > 0 {
		where = append([]string{fmt.Sprintf("%s (on %s)", claim, node)}, where...)
		sort.Strings(where)
		return "", "", "volume claims " + strings.Join(where, ", ") + " are on different nodes"
	}
	return node, claim, ""
}
