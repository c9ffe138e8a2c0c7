package netplan

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestStaleUDP(t *testing.T) {
	dnsSvc := func(nodePort int32, eps ...Endpoint) Service {
		return Service{Namespace: "kube-system", Name: "dns", ClusterIP: ip("10.96.0.10"), Ports: []Port{
			{Protocol: corev1.ProtocolUDP, Port: 53, NodePort: nodePort, Endpoints: eps},
			{Protocol: corev1.ProtocolTCP, Port: 53, Endpoints: eps}}}
	}
	a, b := ep("10.244.0.2", 53, "n1"), ep("10.244.1.2", 53, "n2")
	tests := []struct {
		name     string
		old, new []Service
		want     string
	}{
		{name: "an endpoint gone", old: []Service{dnsSvc(0, a, b)}, new: []Service{dnsSvc(0, a)},
			want: "[{10.96.0.10 53 10.244.1.2}]"},
		{name: "an endpoint gone, with its node port", old: []Service{dnsSvc(30053, a, b)}, new: []Service{dnsSvc(30053, b)},
			want: "[{invalid IP 30053 10.244.0.2} {10.96.0.10 53 10.244.0.2}]"},
		{name: "the first endpoint arrives", old: []Service{dnsSvc(30053)}, new: []Service{dnsSvc(30053, a)},
			want: "[{invalid IP 30053 invalid IP} {10.96.0.10 53 invalid IP}]"},
		{name: "the Service is gone", old: []Service{dnsSvc(0, a)}, new: nil,
			want: "[{10.96.0.10 53 10.244.0.2}]"},
		{name: "an endpoint added", old: []Service{dnsSvc(0, a)}, new: []Service{dnsSvc(0, a, b)}, want: "[]"},
		{name: "TCP needs nothing", old: []Service{{Namespace: "a", Name: "b", ClusterIP: ip("10.96.0.11"), Ports: []Port{tcp(80, 0, a)}}}, want: "[]"},
		{name: "headless needs nothing", old: []Service{{Namespace: "a", Name: "b", Headless: true, Ports: []Port{udp(53, a)}}}, want: "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(StaleUDP(tt.old, tt.new)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
