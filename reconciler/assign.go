package reconciler

// Assigned returns the part of d that node runs under a cluster placement.
// assignments maps pod keys ("namespace/name", JoinName) to the node that
// runs them and claims maps claim keys to the node holding their data (the
// scheduler's Placement). DaemonSet pods stay: each host decides them from
// its own labels, as Expand did. The other pods stay only when assigned to
// node. A claim stays when it is bound to node or a pod that stays uses it.
// Networks all stay: they are cheap, and a pod may land here at any time.
func (d Desired) Assigned(node string, assignments, claims map[string]string) Desired {
	out := Desired{Networks: d.Networks}
	used := map[string]bool{}
	for _, p := range d.Pods {
		if p.Owner.Kind != "DaemonSet" && assignments[JoinName(p.Namespace, p.Name)] != node {
			continue
		}
		out.Pods = append(out.Pods, p)
		for _, v := range p.Volumes {
			if c, ok := v.Source.(Claim); ok {
				used[JoinName(c.Namespace, c.Name)] = true
			}
		}
	}
	for _, c := range d.Claims {
		k := JoinName(c.Namespace, c.Name)
		if used[k] || claims[k] == node {
			out.Claims = append(out.Claims, c)
		}
	}
	return out
}
