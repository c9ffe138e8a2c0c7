package network

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

func TestCNIBridgeName(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"lan", "kn-lan"},
		{"twelve-chars", "kn-twelve-chars"},
		{"thirteen-char", "kn-thirte-"},
		{"sensors.floor-2.building-a", "kn-sensor-"},
	} {
		got := cniBridgeName(tc.name)
		if len(got) > cniIfNameMax || !strings.HasPrefix(got, tc.want) {
			t.Errorf("cniBridgeName(%q) = %q, want %q… of at most %d characters", tc.name, got, tc.want, cniIfNameMax)
		}
	}
	if a, b := cniBridgeName("sensors-floor-1"), cniBridgeName("sensors-floor-2"); a == b {
		t.Errorf("two long names share the bridge %s", a)
	}
}

func TestNetworkConfList(t *testing.T) {
	base := reconciler.Network{Name: "lan", Subnet: "10.9.0.0/24", Gateway: "10.9.0.1", Hash: "sha256:x"}
	for _, tc := range []struct {
		name string
		edit func(*reconciler.Network)
		want string // the plugin's JSON, less the ipam
	}{
		{"bridge", func(n *reconciler.Network) { n.Type = "bridge" },
			`{"type":"bridge","bridge":"kn-lan","isGateway":true,"ipMasq":true,"hairpinMode":true,"forceAddress":true}`},
		{"isolated bridge", func(n *reconciler.Network) { n.Type = "bridge"; n.Isolated = true },
			`{"type":"bridge","bridge":"kn-lan","hairpinMode":true,"forceAddress":true}`},
		{"macvlan", func(n *reconciler.Network) { n.Type = "macvlan"; n.Master = "eth1" },
			`{"type":"macvlan","master":"eth1","mode":"bridge"}`},
		{"ipvlan", func(n *reconciler.Network) { n.Type = "ipvlan"; n.Master = "eth1" },
			`{"type":"ipvlan","master":"eth1","mode":"l2"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base
			tc.edit(&n)
			c, err := networkConfList(n, "/state/cni/networks")
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != "kelpie-net-lan" || c.Labels[reconciler.LabelNetwork] != "lan" ||
				c.Labels[reconciler.LabelSpecHash] != "sha256:x" || !statedir.Managed(c.Labels) {
				t.Errorf("list = %+v", c)
			}
			p := c.Plugins[0]
			ipam := p.IPAM
			p.IPAM = nil
			if got, _ := json.Marshal(p); string(got) != tc.want {
				t.Errorf("plugin = %s\nwant       %s", got, tc.want)
			}
			if ipam == nil || ipam.Type != "host-local" || ipam.DataDir != "/state/cni/networks" ||
				ipam.Ranges[0][0] != (cniRange{Subnet: "10.9.0.0/24", Gateway: "10.9.0.1"}) || len(ipam.Routes) != 0 {
				t.Errorf("ipam = %+v", ipam)
			}
			// libcni reads it back.
			list, err := libcni.ConfListFromBytes(c.bytes())
			if err != nil || list.Name != c.Name || len(list.Plugins) != 1 {
				t.Errorf("libcni reads %v, %v", list, err)
			}
		})
	}
}

func TestValidateNetworkRejects(t *testing.T) {
	ok := reconciler.Network{Name: "lan", Type: "bridge", Subnet: "10.9.0.0/24"}
	for _, tc := range []struct {
		edit func(*reconciler.Network)
		want string
	}{
		{func(n *reconciler.Network) { n.Name = "" }, "invalid name"},
		{func(n *reconciler.Network) { n.Name = "a/b" }, "invalid name"},
		{func(n *reconciler.Network) { n.Name = "a b" }, "invalid name"},
		{func(n *reconciler.Network) { n.Subnet = "10.9.0.0" }, "is not a CIDR"},
		{func(n *reconciler.Network) { n.Gateway = "10.8.0.1" }, "is not an address in subnet"},
		{func(n *reconciler.Network) { n.Type = "vxlan" }, `type "vxlan" is not bridge, macvlan or ipvlan`},
		{func(n *reconciler.Network) { n.Type = "macvlan" }, "needs a master interface"},
	} {
		n := ok
		tc.edit(&n)
		err := validateNetwork(n)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validateNetwork(%+v) = %v, want %q", n, err, tc.want)
		}
	}
	if err := validateNetwork(ok); err != nil {
		t.Errorf("validateNetwork(%+v) = %v", ok, err)
	}
}

func TestDefaultConfListReadsBack(t *testing.T) {
	for _, masq := range []bool{true, false} {
		c := defaultConfList("kelpie0", "10.244.0.0/24", "/var/lib/kelpie/cni/networks", masq)
		list, err := libcni.ConfListFromBytes(c.bytes())
		if err != nil {
			t.Fatal(err)
		}
		if list.Name != cniDefaultNetwork || list.CNIVersion != cniVersion || len(list.Plugins) != 2 ||
			list.Plugins[0].Network.Type != "bridge" || list.Plugins[1].Network.Type != "portmap" ||
			!list.Plugins[1].Network.Capabilities["portMappings"] {
			t.Errorf("default conflist reads back as %+v", list)
		}
		var bridge cniPlugin
		if err := json.Unmarshal(list.Plugins[0].Bytes, &bridge); err != nil {
			t.Fatal(err)
		}
		if bridge.IPMasq != masq || !bridge.HairpinMode {
			t.Errorf("masquerade %v: the bridge has ipMasq %v, hairpinMode %v; want ipMasq %v and hairpinMode", masq, bridge.IPMasq, bridge.HairpinMode, masq)
		}
	}
}

func TestPodPortMappings(t *testing.T) {
	p := reconciler.Pod{
		InitContainers: []reconciler.Container{{Ports: []reconciler.Port{{ContainerPort: 9, HostPort: 9009}}}},
		Containers: []reconciler.Container{
			{Ports: []reconciler.Port{{ContainerPort: 80, HostPort: 8080, Protocol: "TCP"}, {ContainerPort: 81}}},
			{Ports: []reconciler.Port{{ContainerPort: 53, HostPort: 5353, Protocol: "UDP"}, {ContainerPort: 80, HostPort: 8080, Protocol: "TCP"}}},
		},
	}
	got := fmt.Sprint(podPortMappings(p))
	want := "[{5353 53 udp } {8080 80 tcp } {9009 9 tcp }]"
	if got != want {
		t.Errorf("podPortMappings = %s, want %s", got, want)
	}
}

func TestCNIArgs(t *testing.T) {
	p := reconciler.Pod{Namespace: "prod", Name: "web-0", Labels: map[string]string{
		"app": "web", "IP": "10.0.0.9", "bad": "a;b", "app.kubernetes.io/name": "web",
	}}
	got := fmt.Sprint(cniArgs(p))
	want := "[[IgnoreUnknown 1] [K8S_POD_NAMESPACE prod] [K8S_POD_NAME web-0] [K8S_POD_INFRA_CONTAINER_ID prod_web-0] [app web] [app.kubernetes.io/name web]]"
	if got != want {
		t.Errorf("cniArgs = %s\nwant      %s", got, want)
	}
}

func TestResultIPv4TakesTheSandboxInterface(t *testing.T) {
	ip := func(s string, iface int) *types100.IPConfig {
		a, n, _ := net.ParseCIDR(s)
		n.IP = a
		return &types100.IPConfig{Address: *n, Interface: types100.Int(iface)}
	}
	res := &types100.Result{
		CNIVersion: cniVersion,
		Interfaces: []*types100.Interface{{Name: "kelpie0"}, {Name: "veth1"}, {Name: "eth0", Sandbox: "/netns"}},
		IPs:        []*types100.IPConfig{ip("10.244.0.1/24", 0), ip("fd00::5/64", 2), ip("10.244.0.5/24", 2)},
	}
	if got := resultIPv4(res, "eth0"); got != "10.244.0.5" {
		t.Errorf("resultIPv4 = %q, want 10.244.0.5", got)
	}
	if got := resultIPv4(res, "eth1"); got != "" {
		t.Errorf("resultIPv4 for an interface the result lacks = %q", got)
	}
}
