package netplan

import (
	"strings"
	"testing"
)

func TestPodResolvConf(t *testing.T) {
	long := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name, ns, domain string
		hostSearch       []string
		want             string
	}{
		{"plain", "shop", "cluster.local", nil,
			"nameserver 10.244.3.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"default namespace, trailing dot", "", "Cluster.Local.", nil,
			"nameserver 10.244.3.1\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"host search appended once", "shop", "cluster.local", []string{"lan.example.", "cluster.local", "lan.example", ""},
			"nameserver 10.244.3.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local lan.example\noptions ndots:5\n"},
		{"host search cut at 2048 characters", "shop", "cluster.local", []string{long, long, "short.example"},
			"nameserver 10.244.3.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local " + long + " short.example\noptions ndots:5\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(PodResolvConf(ip("10.244.3.1"), tc.ns, tc.domain, tc.hostSearch))
			want := "# Written by kelpie: the cluster DNS server of this host.\n" + tc.want
			if got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	var many []string
	for i := range 40 {
		many = append(many, strings.Repeat("d", i+1)+".example")
	}
	got := string(PodResolvConf(ip("10.244.3.1"), "shop", "cluster.local", many))
	line := strings.Split(got, "\n")[2]
	if n := len(strings.Fields(line)) - 1; n != maxSearchPaths {
		t.Errorf("%d search domains, want the kubelet's limit %d", n, maxSearchPaths)
	}
}
