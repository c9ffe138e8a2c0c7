package agent

import (
	"strings"

	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// serviceEnv is the environment the containers created now get for the
// Services of t (NAME_SERVICE_HOST and the rest, reconciler.NewServiceEnv):
// those that hold a virtual IP in the allocation in force, the leader's in
// a cluster, this host's on its own. A Service still waiting for its IP
// is left out; containers created once it has one see it.
func (a *Agent) serviceEnv(t *target) reconciler.ServiceEnv {
	if t == nil || a.net.state == nil || len(a.net.state.Services) == 0 {
		return nil
	}
	var linked []reconciler.LinkedService
	for _, svc := range netplan.ServicesOf(t.state) {
		key := netplan.ServiceKey(svc)
		alloc, ok := a.net.state.Services[key]
		if !ok || !alloc.ClusterIP.IsValid() {
			continue
		}
		ns, _, _ := strings.Cut(key, "/")
		ls := reconciler.LinkedService{Namespace: ns, Name: svc.Name, ClusterIP: alloc.ClusterIP.String()}
		for _, p := range svc.Spec.Ports {
			ls.Ports = append(ls.Ports, reconciler.LinkedPort{Name: p.Name, Port: p.Port, Protocol: string(p.Protocol)})
		}
		linked = append(linked, ls)
	}
	return reconciler.NewServiceEnv(linked)
}
