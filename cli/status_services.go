package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kelpie-dev/kelpie/agent"
)

// printServices prints the Services table of `kelpie status`: each
// Service with its virtual IP (or None), its ports ("80/TCP", with
// ":NODEPORT") and how many ready endpoints it has in the cluster.
func printServices(w io.Writer, svcs []agent.ServiceStatus) {
	if len(svcs) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tSERVICE\tCLUSTER-IP\tPORTS\tENDPOINTS")
	for _, s := range svcs {
		ip := s.ClusterIP
		if ip == "" {
			ip = "<none yet>"
		}
		ports := make([]string, 0, len(s.Ports))
		for _, p := range s.Ports {
			ports = append(ports, p.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", termSafe(s.Namespace), termSafe(s.Name), ip, strings.Join(ports, ","), s.Endpoints)
	}
	tw.Flush()
	printLoadBalancers(w, svcs)
}

// printLoadBalancers prints, under the Services table, each LoadBalancer
// Service's ingress (the hosts' addresses that serve it) and the ports a
// host could not serve.
func printLoadBalancers(w io.Writer, svcs []agent.ServiceStatus) {
	for _, s := range svcs {
		if s.Type != "LoadBalancer" {
			continue
		}
		ingress := "<none yet>"
		if len(s.Ingress) > 0 {
			ingress = strings.Join(s.Ingress, ", ")
		}
		fmt.Fprintf(w, "LoadBalancer %s/%s: ingress %s\n", termSafe(s.Namespace), termSafe(s.Name), termSafe(ingress))
		for _, c := range s.Conflicts {
			fmt.Fprintf(w, "  not served: %s\n", termSafe(c))
		}
	}
}
