package netplan

import (
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// lbScenario is host n1 with LoadBalancer Services: one open to all, one
// with source ranges and Local, one without endpoints, one losing its port
// to another, one losing it to a hostPort.
func lbScenario() RulesetInput {
	return RulesetInput{
		Node:        "n1",
		ClusterCIDR: pfx("10.244.0.0/16"),
		ServiceCIDR: pfx("10.96.0.0/16"),
		NodeIPs:     []netip.Addr{ip("192.168.1.11")},
		Services: []Service{
			{Namespace: "default", Name: "a-web", ClusterIP: ip("10.96.20.1"), LoadBalancer: true, Ports: []Port{
				tcp(80, 30180, ep("10.244.0.5", 8080, "n1"), ep("10.244.1.5", 8080, "n2"))}},
			{Namespace: "default", Name: "b-web", ClusterIP: ip("10.96.20.2"), LoadBalancer: true, Ports: []Port{
				tcp(80, 0, ep("10.244.0.6", 8080, "n1"))}},
			{Namespace: "default", Name: "c-admin", ClusterIP: ip("10.96.20.3"), LoadBalancer: true, ExternalLocal: true,
				SourceRanges: []netip.Prefix{pfx("192.168.1.0/24"), pfx("10.1.0.0/16")}, Ports: []Port{
					tcp(8443, 0, ep("10.244.0.7", 443, "n1"), ep("10.244.1.7", 443, "n2"))}},
			{Namespace: "default", Name: "d-empty", ClusterIP: ip("10.96.20.4"), LoadBalancer: true, Ports: []Port{tcp(81, 0)}},
			{Namespace: "default", Name: "e-ssh", ClusterIP: ip("10.96.20.5"), LoadBalancer: true, Ports: []Port{
				tcp(22, 0, ep("10.244.0.8", 22, "n1"))}},
			{Namespace: "default", Name: "f-elsewhere", ClusterIP: ip("10.96.20.6"), LoadBalancer: true, ExternalLocal: true, Ports: []Port{
				tcp(82, 0, ep("10.244.1.9", 80, "n2"))}},
		},
	}
}

func TestClaimLoadBalancerPorts(t *testing.T) {
	in := lbScenario()
	// A node port of another Service at an LB port number also wins.
	in.Services = append(in.Services, Service{Namespace: "z", Name: "np", ClusterIP: ip("10.96.20.9"), Ports: []Port{tcp(9000, 30443)}},
		Service{Namespace: "default", Name: "g-np", ClusterIP: ip("10.96.20.7"), LoadBalancer: true, Ports: []Port{tcp(30443, 0)}})
	uses := []PortUse{{Port: 22, Protocol: corev1.ProtocolTCP, By: "a socket listening on 0.0.0.0:22"}, {Port: 22, Protocol: corev1.ProtocolTCP, By: "second"}}
	// Whatever the order of the Services, the same one wins.
	for _, rev := range []bool{false, true} {
		svcs := slices.Clone(in.Services)
		for i := range svcs {
			svcs[i].Ports = slices.Clone(svcs[i].Ports)
		}
		if rev {
			slices.Reverse(svcs)
		}
		ClaimLoadBalancerPorts(svcs, "n1", uses)
		got := map[string]string{}
		for _, s := range svcs {
			for _, p := range s.Ports {
				if p.LBConflict != "" {
					got[s.Key()] = p.LBConflict
				}
			}
		}
		want := map[string]string{
			"default/b-web": "port 80/TCP taken on host n1 by LoadBalancer service default/a-web",
			"default/e-ssh": "port 22/TCP taken on host n1 by a socket listening on 0.0.0.0:22",
			"default/g-np":  "port 30443/TCP taken on host n1 by the node port of service z/np",
		}
		if !maps.Equal(got, want) {
			t.Errorf("reversed=%v: conflicts %v, want %v", rev, got, want)
		}
	}
}

// lbRules builds the scenario's ruleset after claiming, as text lines.
func lbRules(t *testing.T) (*Ruleset, []string) {
	in := lbScenario()
	ClaimLoadBalancerPorts(in.Services, "n1", []PortUse{{Port: 22, Protocol: corev1.ProtocolTCP, By: "sshd"}})
	r := mustBuild(t, in)
	return r, strings.Split(r.Text(), "\n")
}

func TestLoadBalancerRules(t *testing.T) {
	_, lines := lbRules(t)
	has := func(s string) bool { return slices.Contains(lines, s) }
	for _, want := range []string{
		"add rule ip kelpie services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-lb-ports",
		"add element ip kelpie service-lb-ports { tcp . 80 : goto external-default/a-web/tcp/80 }",
		"add element ip kelpie service-nodeports { tcp . 30180 : goto external-default/a-web/tcp/80 }",
		"add element ip kelpie service-lb-ports { tcp . 8443 : goto external-default/c-admin/tcp/8443 }",
		"add rule ip kelpie external-default/c-admin/tcp/8443 goto local-default/c-admin/tcp/8443",
		"add element ip kelpie lb-firewall { tcp . 8443 : goto firewall-default/c-admin/tcp/8443 }",
		`add rule ip kelpie firewall-default/c-admin/tcp/8443 ip saddr 10.244.0.0/16 return comment "pods"`,
		`add rule ip kelpie firewall-default/c-admin/tcp/8443 ip saddr != { 10.1.0.0/16, 192.168.1.0/24 } drop comment "loadBalancerSourceRanges"`,
		"add element ip kelpie no-endpoint-lb-ports { tcp . 81 : goto reject-chain }",
		"add element ip kelpie service-lb-ports { tcp . 82 : goto external-default/f-elsewhere/tcp/82 }",
		"add element ip kelpie no-endpoint-lb-ports { tcp . 82 : drop }",
	} {
		if !has(want) {
			t.Errorf("missing %q", want)
		}
	}
	for _, line := range lines {
		// b-web lost 80 to a-web, e-ssh lost 22 to sshd: neither is on the host's address.
		if strings.Contains(line, "external-default/b-web") || strings.Contains(line, "external-default/e-ssh") {
			t.Errorf("a port taken on the host is programmed: %q", line)
		}
		// a-web has no source ranges: no firewall.
		if strings.Contains(line, "firewall-default/a-web") {
			t.Errorf("a Service without source ranges is firewalled: %q", line)
		}
	}
}

func TestNoLoadBalancerNoLoadBalancerChains(t *testing.T) {
	r := mustBuild(t, rulesetScenario())
	if r.HasChain(chainLBFirewall) || strings.Contains(r.Text(), mapServiceLBPorts) {
		t.Errorf("a table without LoadBalancer Services has LoadBalancer chains")
	}
}

func TestResolveLoadBalancer(t *testing.T) {
	no := false
	svcs := []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "lb"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			LoadBalancerSourceRanges: []string{"10.1.2.3/16", " 192.168.0.0/24 "}, Ports: []corev1.ServicePort{{Port: 80}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "lb-no-np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: &no, Ports: []corev1.ServicePort{{Port: 80}}}},
	}
	alloc, _, err := allocateServices(nil, svcs, DefaultConfig(), t0, &Report{})
	if err != nil {
		t.Fatal(err)
	}
	if len(alloc["default/lb"].NodePorts) != 1 || len(alloc["default/lb-no-np"].NodePorts) != 0 {
		t.Errorf("node ports %v and %v, want one for lb and none with allocateLoadBalancerNodePorts: false", alloc["default/lb"].NodePorts, alloc["default/lb-no-np"].NodePorts)
	}
	got := Resolve(svcs, alloc, nil, nil)
	if !got[0].LoadBalancer || !slices.Equal(got[0].SourceRanges, []netip.Prefix{pfx("10.1.0.0/16"), pfx("192.168.0.0/24")}) {
		t.Errorf("resolved %+v", got[0])
	}
}

func TestLoadBalancerNftCheck(t *testing.T) {
	nft := testenv.Binary(t, "nft", "nftables")
	testenv.Root(t)
	r, _ := lbRules(t)
	plain := mustBuild(t, rulesetScenario())
	cases := map[string]string{
		"full":   r.Text(),
		"add-lb": plain.Text() + Diff(plain, r).Text,
		"del-lb": r.Text() + Diff(r, plain).Text,
	}
	for _, name := range sortedKeys(cases) {
		path := filepath.Join(t.TempDir(), name+".nft")
		if err := os.WriteFile(path, []byte(cases[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(nft, "-c", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("nft -c -f %s: %v\n%s", name, err, out)
		}
	}
}
