package network

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestSetupGivesAddressAndEth0(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web")
	sb := tn.setupPod(t, p)

	_, subnet, _ := net.ParseCIDR(tn.cfg.PodSubnet)
	if ip := net.ParseIP(sb.IP); ip == nil || !subnet.Contains(ip) {
		t.Fatalf("IP %q is not in the pod subnet %s", sb.IP, subnet)
	}
	if sb.NetNSPath != tn.netnsPath(tn.ns, "web") || !sb.Ready {
		t.Errorf("sandbox = %+v, want ready at %s", sb, tn.netnsPath(tn.ns, "web"))
	}
	if ok, err := netnsMounted(sb.NetNSPath); !ok || err != nil {
		t.Fatalf("netns %s mounted = %v, %v", sb.NetNSPath, ok, err)
	}
	inNetNS(t, sb.NetNSPath, func() error {
		eth0, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, _ := eth0.Addrs()
		if len(addrs) == 0 || !strings.HasPrefix(addrs[0].String(), sb.IP+"/") {
			return fmt.Errorf("eth0 addresses %v, want %s", addrs, sb.IP)
		}
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		if lo.Flags&net.FlagUp == 0 {
			return fmt.Errorf("lo is down")
		}
		return nil
	})
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 1 || got[sb.IP] != tn.id("web") {
		t.Errorf("leases = %v, want %s leased to %s", got, sb.IP, tn.id("web"))
	}
}

func TestSetupTwiceIsIdempotent(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web")
	first := tn.setupPod(t, p)
	second, err := tn.Setup(context.Background(), p)
	if err != nil {
		t.Fatalf("second setup: %v", err)
	}
	if second.IP != first.IP || second.NetNSPath != first.NetNSPath {
		t.Errorf("second setup = %+v, first %+v", second, first)
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 1 {
		t.Errorf("leases after two setups = %v, want one", got)
	}
}

func TestHostNetworkPodHasNoSandbox(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("host")
	p.HostNetwork = true
	sb, err := tn.Setup(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if sb.NetNSPath != "" || sb.IP != "" || len(sb.IPs) != 0 {
		t.Errorf("hostNetwork sandbox = %+v, want zero", sb)
	}
	if _, err := os.Stat(tn.netnsPath(tn.ns, "host")); !os.IsNotExist(err) {
		t.Errorf("hostNetwork pod got a netns file: %v", err)
	}
}

func TestTwoSandboxesTalk(t *testing.T) {
	tn := newTestNet(t)
	a := tn.setupPod(t, tn.pod("a"))
	b := tn.setupPod(t, tn.pod("b"))
	if a.IP == b.IP {
		t.Fatalf("both pods got %s", a.IP)
	}
	listenIn(t, a.NetNSPath, 8080, "hello from a")
	got, err := dialRead(t, b.NetNSPath, net.JoinHostPort(a.IP, "8080"))
	if err != nil || got != "hello from a" {
		t.Fatalf("b → a:8080 = %q, %v", got, err)
	}
}

func TestHostPortReachesPod(t *testing.T) {
	tn := newTestNet(t)
	hostPort := int32(30000 + tn.n)
	sb := tn.setupPod(t, tn.pod("web", 80, hostPort))
	listenIn(t, sb.NetNSPath, 80, "hello via hostPort")

	gw := fmt.Sprintf("10.250.%d.1", tn.n) // the bridge's address, on this host
	got, err := dialRead(t, "", net.JoinHostPort(gw, fmt.Sprint(hostPort)))
	if err != nil || got != "hello via hostPort" {
		t.Fatalf("host → %s:%d = %q, %v", gw, hostPort, got, err)
	}
	if rules := natRules(t, tn.id("web")); len(rules) == 0 {
		t.Errorf("no nat rules mention the pod; portmap did not run?")
	}
	if err := tn.Teardown(context.Background(), tn.ns, "web", nil); err != nil {
		t.Fatal(err)
	}
	if rules := natRules(t, tn.id("web")); len(rules) != 0 {
		t.Errorf("nat rules left after teardown:\n%s", strings.Join(rules, "\n"))
	}
}

func TestTeardownFreesLeaseAndNetns(t *testing.T) {
	tn := newTestNet(t)
	sb := tn.setupPod(t, tn.pod("web"))
	for i := 0; i < 2; i++ { // the second is a no-op
		if err := tn.Teardown(context.Background(), tn.ns, "web", nil); err != nil {
			t.Fatalf("teardown %d: %v", i+1, err)
		}
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 0 {
		t.Errorf("leases after teardown = %v", got)
	}
	if _, err := os.Stat(sb.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("netns file after teardown: %v", err)
	}
	if rules := natRules(t, tn.id("web")); len(rules) != 0 {
		t.Errorf("nat rules left after teardown:\n%s", strings.Join(rules, "\n"))
	}
	sbs, err := tn.Sandboxes()
	if err != nil || len(sbs) != 0 {
		t.Errorf("sandboxes after teardown = %v, %v", sbs, err)
	}
}

func TestTeardownAfterNetnsDeletedByHand(t *testing.T) {
	tn := newTestNet(t)
	sb := tn.setupPod(t, tn.pod("web", 80, int32(30000+tn.n)))
	// What `ip netns del` does by hand.
	if err := netnsRemove(sb.NetNSPath); err != nil {
		t.Fatal(err)
	}
	if err := tn.Teardown(context.Background(), tn.ns, "web", nil); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 0 {
		t.Errorf("leases after teardown = %v", got)
	}
	if rules := natRules(t, tn.id("web")); len(rules) != 0 {
		t.Errorf("nat rules left after teardown:\n%s", strings.Join(rules, "\n"))
	}
}

func TestParallelSetupsGetDistinctAddresses(t *testing.T) {
	tn := newTestNet(t)
	const pods = 8
	ips := make([]string, pods)
	errs := make([]error, pods)
	var wg sync.WaitGroup
	for i := 0; i < pods; i++ {
		p := tn.pod(fmt.Sprint("p", i))
		t.Cleanup(func() { _ = tn.Teardown(context.Background(), p.Namespace, p.Name, nil) })
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sb, err := tn.Setup(context.Background(), p)
			ips[i], errs[i] = sb.IP, err
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range ips {
		if errs[i] != nil {
			t.Fatalf("setup p%d: %v", i, errs[i])
		}
		if seen[ips[i]] {
			t.Errorf("two pods got %s", ips[i])
		}
		seen[ips[i]] = true
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != pods {
		t.Errorf("%d leases for %d pods: %v", len(got), pods, got)
	}
}

// BenchmarkSetupTeardown measures one pod's sandbox: namespace, lo, eth0
// with a hostPort, and its removal.
func BenchmarkSetupTeardown(b *testing.B) {
	tn := newTestNet(b)
	for i := 0; i < b.N; i++ {
		p := tn.pod("bench", 80, int32(30000+tn.n))
		if _, err := tn.Setup(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		if err := tn.Teardown(context.Background(), p.Namespace, p.Name, nil); err != nil {
			b.Fatal(err)
		}
	}
}
