package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/agent"
)

func TestPrintServicesLoadBalancer(t *testing.T) {
	var b bytes.Buffer
	printServices(&b, []agent.ServiceStatus{
		{Namespace: "shop", Name: "web", ClusterIP: "10.96.0.20", Type: "LoadBalancer", Endpoints: 2,
			Ingress:   []string{"192.168.1.11", "192.168.1.12"},
			Conflicts: []string{"port 22/TCP taken on host b by a socket listening on 0.0.0.0:22"},
			Ports:     []agent.ServicePortStatus{{Protocol: "TCP", Port: 80, NodePort: 30080}}},
		{Namespace: "shop", Name: "new", Type: "LoadBalancer", Ports: []agent.ServicePortStatus{{Protocol: "TCP", Port: 81}}},
		{Namespace: "shop", Name: "db", ClusterIP: "10.96.0.21", Ports: []agent.ServicePortStatus{{Protocol: "TCP", Port: 5432}}},
	})
	out := b.String()
	for _, want := range []string{
		"LoadBalancer shop/web: ingress 192.168.1.11, 192.168.1.12\n",
		"  not served: port 22/TCP taken on host b by a socket listening on 0.0.0.0:22\n",
		"LoadBalancer shop/new: ingress <none yet>\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "shop/db:") {
		t.Errorf("a ClusterIP Service is listed as a LoadBalancer:\n%s", out)
	}
}
