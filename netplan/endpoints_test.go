package netplan

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// endpointsOf renders a resolution as "KEY PORT/PROTO(np N): IP:PORT@NODE …" lines.
func endpointsOf(svcs []Service) string {
	var b strings.Builder
	for _, s := range svcs {
		for _, p := range s.Ports {
			fmt.Fprintf(&b, "%s %d/%s", s.Key(), p.Port, p.Protocol)
			if p.NodePort != 0 {
				fmt.Fprintf(&b, "(np %d)", p.NodePort)
			}
			b.WriteString(":")
			for _, ep := range p.Endpoints {
				fmt.Fprintf(&b, " %s:%d@%s", ep.IP, ep.Port, ep.Node)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestResolve(t *testing.T) {
	nodes := []Node{alive("n1"), suspect("n2"), dead("n3", t0), left("n4")}
	named := withPorts(corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("web")},
		corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromString("dns")})
	withCPorts := func(p Pod, ports ...corev1.ContainerPort) Pod { p.Ports = ports; return p }
	notReady := func(p Pod) Pod { p.Ready = false; return p }
	tests := []struct {
		name  string
		svcs  []*corev1.Service
		alloc map[string]ServiceAlloc
		pods  []Pod
		want  string
	}{
		{name: "selected ready pods on live hosts, sorted by IP",
			svcs: []*corev1.Service{service("default/web")},
			pods: []Pod{pod("default/web-2", "web", "n2", "10.244.1.9"), pod("default/web-1", "web", "n1", "10.244.0.10"),
				pod("default/web-3", "web", "n3", "10.244.2.5"), pod("default/web-4", "web", "n4", "10.244.3.5"),
				pod("default/web-5", "web", "n9", "10.244.9.5"), notReady(pod("default/web-6", "web", "n1", "10.244.0.11")),
				pod("default/api-1", "api", "n1", "10.244.0.12"), pod("other/web-1", "web", "n1", "10.244.0.13"),
				{Namespace: "default", Name: "web-7", Node: "n1", Labels: map[string]string{"app": "web"}, Ready: true}},
			want: "default/web 80/TCP: 10.244.0.10:8080@n1 10.244.1.9:8080@n2\n"},
		{name: "named target ports resolve per pod and protocol",
			svcs: []*corev1.Service{service("default/web", named)},
			pods: []Pod{
				withCPorts(pod("default/a", "web", "n1", "10.244.0.2"), corev1.ContainerPort{Name: "web", ContainerPort: 8080}, corev1.ContainerPort{Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP}),
				withCPorts(pod("default/b", "web", "n1", "10.244.0.3"), corev1.ContainerPort{Name: "web", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}),
				withCPorts(pod("default/c", "web", "n1", "10.244.0.4"), corev1.ContainerPort{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolTCP})},
			want: "default/web 80/TCP: 10.244.0.2:8080@n1 10.244.0.3:9090@n1\ndefault/web 53/UDP: 10.244.0.2:5353@n1\n"},
		{name: "no selector, no endpoints", svcs: []*corev1.Service{service("default/ext", func(s *corev1.Service) { s.Spec.Selector = nil })},
			pods: []Pod{pod("default/x", "ext", "n1", "10.244.0.2")}, want: "default/ext 80/TCP:\n"},
		{name: "allocations come along", svcs: []*corev1.Service{service("default/web", nodePort(0))},
			alloc: map[string]ServiceAlloc{"default/web": held("10.96.0.20", "80/TCP", 30080)},
			pods:  []Pod{pod("default/web-1", "web", "n1", "10.244.0.2")},
			want:  "default/web 80/TCP(np 30080): 10.244.0.2:8080@n1\n"},
		{name: "host-network pods on one host count once", svcs: []*corev1.Service{service("default/web")},
			pods: []Pod{pod("default/b", "web", "n1", "192.168.1.10"), pod("default/a", "web", "n1", "192.168.1.10")},
			want: "default/web 80/TCP: 192.168.1.10:8080@n1\n"},
		{name: "Services sorted by key", svcs: []*corev1.Service{service("z/a"), service("a/z")},
			want: "a/z 80/TCP:\nz/a 80/TCP:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := endpointsOf(Resolve(tt.svcs, tt.alloc, tt.pods, nodes))
			if got != tt.want {
				t.Errorf("got:\n%swant:\n%s", got, tt.want)
			}
		})
	}
}

func TestResolveServiceFields(t *testing.T) {
	svcs := []*corev1.Service{service("default/a", affinity(0), local()), service("default/b", affinity(60)), service("default/h", headless())}
	alloc := map[string]ServiceAlloc{"default/a": held("10.96.0.20"), "default/h": held("headless")}
	pods := []Pod{pod("default/h-0", "h", "n1", "10.244.0.5"), {Namespace: "default", Name: "h-1", Node: "n1", IP: ip("10.244.0.6"),
		Labels: map[string]string{"app": "h"}, Ready: true, Hostname: "h-1", Subdomain: "h"}}
	got := Resolve(svcs, alloc, pods, []Node{alive("n1")})
	if a := got[0]; a.ClusterIP != ip("10.96.0.20") || a.AffinityTimeout != DefaultAffinityTimeout || !a.ExternalLocal {
		t.Errorf("default/a = %+v", a)
	}
	if b := got[1]; b.AffinityTimeout != 60 || b.ExternalLocal || b.ClusterIP.IsValid() {
		t.Errorf("default/b = %+v", b)
	}
	h := got[2]
	if !h.Headless || len(h.Ports[0].Endpoints) != 2 || h.Ports[0].Endpoints[0].Hostname != "10-244-0-5" || h.Ports[0].Endpoints[1].Hostname != "h-1" {
		t.Errorf("default/h = %+v", h)
	}
}
