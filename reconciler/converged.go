package reconciler

// Converged returns the Actual of a host that runs exactly d: every pod
// with its sandbox ready and its app containers running, every network and
// claim in place. Planning a new desired state against it says what would
// change on a host that runs d, without asking the host: `kelpie plan
// --cluster` previews a commit for every node this way.
func Converged(d Desired) Actual {
	var a Actual
	for _, p := range d.Pods {
		ap := ActualPod{Namespace: p.Namespace, Name: p.Name, Owner: p.Owner, Hash: p.Hash, SandboxReady: true,
			Networks: p.Networks, GracePeriod: p.TerminationGracePeriod}
		for _, c := range p.InitContainers {
			ap.Containers = append(ap.Containers, ActualContainer{Name: c.Name, State: Exited})
		}
		for _, c := range p.Containers {
			ap.Containers = append(ap.Containers, ActualContainer{Name: c.Name, State: Running})
		}
		a.Pods = append(a.Pods, ap)
	}
	for _, n := range d.Networks {
		a.Networks = append(a.Networks, ActualNetwork{Name: n.Name, Hash: n.Hash})
	}
	for _, c := range d.Claims {
		a.Claims = append(a.Claims, ActualClaim{Namespace: c.Namespace, Name: c.Name})
	}
	return a
}
