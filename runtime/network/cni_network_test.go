package network

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/network/link"
	"github.com/kelpie-dev/kelpie/runtime/network/nettest"
)

// testNetwork is a kelpie Network of the given type on a fresh
// 10.251.N.0/24, with a name short enough for its bridge to be "kn-NAME".
func (tn *testNet) network(t *testing.T, typ string, isolated bool) reconciler.Network {
	t.Helper()
	n := nettest.FreeOctet(t, "10.251.")
	name := fmt.Sprintf("t%x%d", os.Getpid()&0xffff, testNetSeq.Add(1))
	nw := reconciler.Network{
		Name:     name,
		Type:     typ,
		Subnet:   fmt.Sprintf("10.251.%d.0/24", n),
		Gateway:  fmt.Sprintf("10.251.%d.1", n),
		Isolated: isolated,
		Hash:     "sha256:" + name,
	}
	t.Cleanup(func() {
		if err := tn.RemoveNetwork(context.Background(), name); err != nil {
			t.Errorf("remove network %s: %v", name, err)
		}
	})
	return nw
}

func TestExtraBridgeNetworks(t *testing.T) {
	tn := newTestNet(t)
	ctx := context.Background()
	isolated := tn.network(t, "bridge", true)
	open := tn.network(t, "bridge", false)
	for _, n := range []reconciler.Network{isolated, open, isolated} { // again: a no-op
		if err := tn.EnsureNetwork(ctx, n); err != nil {
			t.Fatalf("EnsureNetwork %s: %v", n.Name, err)
		}
	}
	got, err := tn.Networks()
	if err != nil {
		t.Fatal(err)
	}
	want := []reconciler.ActualNetwork{{Name: isolated.Name, Hash: isolated.Hash}, {Name: open.Name, Hash: open.Hash}}
	if open.Name < isolated.Name {
		want[0], want[1] = want[1], want[0]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Networks() = %v, want %v", got, want)
	}

	p := tn.pod("sensor")
	p.Networks = []string{isolated.Name, open.Name}
	sb := tn.setupPod(t, p)
	for i, n := range []reconciler.Network{isolated, open} {
		_, subnet, _ := net.ParseCIDR(n.Subnet)
		ip := net.ParseIP(sb.IPs[n.Name])
		if ip == nil || !subnet.Contains(ip) {
			t.Errorf("IPs[%s] = %q, want an address in %s", n.Name, sb.IPs[n.Name], n.Subnet)
			continue
		}
		ifName := fmt.Sprintf("eth%d", i+1)
		inNetNS(t, sb.NetNSPath, func() error {
			ifi, err := net.InterfaceByName(ifName)
			if err != nil {
				return err
			}
			addrs, _ := ifi.Addrs()
			if len(addrs) == 0 || !strings.HasPrefix(addrs[0].String(), ip.String()+"/") {
				t.Errorf("%s has %v, want %s", ifName, addrs, ip)
			}
			return nil
		})
	}
	// Isolated: no gateway address on its bridge, no masquerade.
	br, err := net.InterfaceByName(cniBridgeName(isolated.Name))
	if err != nil {
		t.Fatalf("bridge of the isolated network: %v", err)
	}
	addrs, _ := br.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			t.Errorf("isolated bridge has IPv4 address %v", a)
		}
	}
	if rules := natRules(t, cniNetworkName(isolated.Name)); len(rules) != 0 {
		t.Errorf("isolated network has nat rules: %v", rules)
	}
	if rules := natRules(t, cniNetworkName(open.Name)); len(rules) == 0 {
		t.Errorf("non-isolated network has no masquerade rule")
	}
	sbs, err := tn.Sandboxes()
	if err != nil {
		t.Fatal(err)
	}
	if got := sbs[p.Namespace+"/"+p.Name]; !got.Ready || got.IP != sb.IP || fmt.Sprint(got.IPs) != fmt.Sprint(sb.IPs) {
		t.Errorf("Sandboxes() = %+v, setup gave %+v", got, sb)
	}

	if err := tn.Teardown(ctx, p.Namespace, p.Name, p.Networks); err != nil {
		t.Fatal(err)
	}
	for _, n := range []reconciler.Network{isolated, open} {
		if got := tn.leases(t, cniNetworkName(n.Name)); len(got) != 0 {
			t.Errorf("leases on %s after teardown: %v", n.Name, got)
		}
		for i := 0; i < 2; i++ {
			if err := tn.RemoveNetwork(ctx, n.Name); err != nil {
				t.Fatalf("RemoveNetwork %s (%d): %v", n.Name, i+1, err)
			}
		}
		if link.IsBridge(cniBridgeName(n.Name)) {
			t.Errorf("bridge %s left after RemoveNetwork", cniBridgeName(n.Name))
		}
		if _, err := os.Stat(cniConfPath(tn.confDir, cniNetworkName(n.Name))); !os.IsNotExist(err) {
			t.Errorf("conflist of %s left: %v", n.Name, err)
		}
	}
	if got, _ := tn.Networks(); len(got) != 0 {
		t.Errorf("Networks() after removal = %v", got)
	}
}

func TestEnsureNetworkUpdatesHash(t *testing.T) {
	tn := newTestNet(t)
	n := tn.network(t, "bridge", false)
	if err := tn.EnsureNetwork(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	n.Hash = "sha256:changed"
	n.Isolated = true
	if err := tn.EnsureNetwork(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	got, err := tn.Networks()
	if err != nil || len(got) != 1 || got[0].Hash != "sha256:changed" {
		t.Errorf("Networks() = %v, %v; want hash sha256:changed", got, err)
	}
}

func TestMacvlanAndIpvlanNetworks(t *testing.T) {
	tn := newTestNet(t)
	testenv.Binary(t, "ip", "iproute2")
	master := fmt.Sprintf("kd%x-%d", os.Getpid(), testNetSeq.Add(1))
	// A veth as the master: this kernel may lack the dummy driver; the
	// bridge plugin needs veth anyway.
	if out, err := exec.Command("ip", "link", "add", master, "type", "veth", "peer", "name", master+"p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add %s type veth: %v: %s", master, err, out)
	}
	t.Cleanup(func() { _ = link.Delete(master) })
	if out, err := exec.Command("ip", "link", "set", master, "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s up: %v: %s", master, err, out)
	}
	for _, typ := range []string{"macvlan", "ipvlan"} {
		t.Run(typ, func(t *testing.T) {
			probe := master + "x"
			if out, err := exec.Command("ip", "link", "add", probe, "link", master, "type", typ).CombinedOutput(); err != nil {
				// Deliberately a plain skip, not testenv.Missing: a kernel
				// feature with no package to install, and the kernel of
				// this project's CI machines has macvlan but no ipvlan.
				t.Skipf("this kernel cannot make %s links (ip link add: %v: %s)", typ, err, strings.TrimSpace(string(out)))
			}
			_ = link.Delete(probe)
			n := tn.network(t, typ, false)
			n.Master = master
			if err := tn.EnsureNetwork(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			p := tn.pod("vlan-" + typ)
			p.Networks = []string{n.Name}
			sb := tn.setupPod(t, p)
			_, subnet, _ := net.ParseCIDR(n.Subnet)
			if ip := net.ParseIP(sb.IPs[n.Name]); ip == nil || !subnet.Contains(ip) {
				t.Errorf("IPs = %v, want an address of %s on %s", sb.IPs, n.Subnet, n.Name)
			}
		})
	}
}

func TestSetupRefusesUnknownNetwork(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web")
	p.Networks = []string{"nosuch"}
	_, err := tn.Setup(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "network nosuch is not set up") {
		t.Fatalf("setup with an unknown network: %v", err)
	}
	// Nothing was made.
	if _, err := os.Stat(tn.netnsPath(p.Namespace, p.Name)); !os.IsNotExist(err) {
		t.Errorf("netns made for a pod that cannot be set up: %v", err)
	}
}

func TestNewHostNetWithoutPlugins(t *testing.T) {
	_, err := New(Config{StateDir: t.TempDir(), CNIBinDir: []string{t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "CNI plugin bridge not found") {
		t.Fatalf("New without plugins: %v", err)
	}
}
