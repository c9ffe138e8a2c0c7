package nft

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/netplan"
)

// Addresses of the test network namespace: the client's address (the
// source of its connections), the two endpoints, all on one veth
// interface, and the Service range routed to it.
var (
	clusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	serviceCIDR = netip.MustParsePrefix("10.96.0.0/16")
	clientIP    = netip.MustParseAddr("10.244.0.1")
	ep1         = netip.MustParseAddr("10.244.0.5")
	ep2         = netip.MustParseAddr("10.244.0.6")
	webVIP      = netip.MustParseAddr("10.96.0.10")
	dnsVIP      = netip.MustParseAddr("10.96.0.11")
)

var (
	netnsSeq  atomic.Int32
	sweepOnce sync.Once // deletes the namespaces of test processes that are gone
)

// sweepNetns deletes the namespaces "kelpie-nft-PID-N" of processes that
// are gone (killed test runs).
func sweepNetns() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "kelpie-nft-")
		pid, _, ok2 := strings.Cut(rest, "-")
		if !ok || !ok2 {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue
		}
		_ = exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// testNetns makes a network namespace of the test's own (/run/netns/NAME)
// with lo up and an interface (one end of a veth pair) holding the client's and the endpoints'
// addresses, routes the Service range to it, and deletes it when the test
// ends. Nothing outside the namespace is touched.
func testNetns(t *testing.T) string {
	t.Helper()
	testenv.Root(t)
	testenv.Binary(t, "ip", "iproute2")
	testenv.Binary(t, "nft", "nftables")
	testenv.Binary(t, "nsenter", "util-linux")
	sweepOnce.Do(sweepNetns)
	name := fmt.Sprintf("kelpie-nft-%d-%d", os.Getpid(), netnsSeq.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "veth0", "type", "veth", "peer", "name", "veth1"}, // no dummy driver on every kernel
		{"link", "set", "veth1", "up"},
		{"addr", "add", clientIP.String() + "/32", "dev", "veth0"},
		{"addr", "add", ep1.String() + "/32", "dev", "veth0"},
		{"addr", "add", ep2.String() + "/32", "dev", "veth0"},
		{"link", "set", "veth0", "up"},
		{"route", "add", serviceCIDR.String(), "dev", "veth0", "src", clientIP.String()},
	} {
		run(t, append([]string{"ip", "-n", name}, args...)...)
	}
	return "/run/netns/" + name
}

// run runs a command and fails the test when it fails.
func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nftIn runs nft with args in the namespace at path.
func nftIn(t testing.TB, path string, args ...string) string {
	t.Helper()
	return run(t, append([]string{"nsenter", "--net=" + path, "--", "nft"}, args...)...)
}

// listTable returns `nft list table ip NAME` in the namespace, "" when the
// table does not exist.
func listTable(path, name string) string {
	out, err := exec.Command("nsenter", "--net="+path, "--", "nft", "list", "table", "ip", name).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// inNetns runs fn on a thread that entered the namespace at path; sockets
// fn makes live there. The thread goes back afterwards, or dies.
func inNetns(t testing.TB, path string, fn func()) {
	t.Helper()
	target, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			goruntime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			done <- err
			return
		}
		fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err // stay locked: the thread ends with the goroutine
			return
		}
		goruntime.UnlockOSThread()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("in netns %s: %v", path, err)
	}
}

// serveTCP listens on addr:port in the namespace and answers every
// connection with its own address, until the test ends.
func serveTCP(t *testing.T, path string, addr netip.Addr, port int) {
	t.Helper()
	var l net.Listener
	inNetns(t, path, func() {
		var err error
		if l, err = net.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String()); err != nil {
			t.Errorf("listen: %v", err)
		}
	})
	if l == nil {
		t.FailNow()
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, addr)
			c.Close()
		}
	}()
}

// serveUDP answers every datagram to addr:port in the namespace with its
// own address, until the test ends.
func serveUDP(t *testing.T, path string, addr netip.Addr, port int) {
	t.Helper()
	var c net.PacketConn
	inNetns(t, path, func() {
		var err error
		if c, err = net.ListenPacket("udp", netip.AddrPortFrom(addr, uint16(port)).String()); err != nil {
			t.Errorf("listen: %v", err)
		}
	})
	if c == nil {
		t.FailNow()
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo([]byte(addr.String()), from)
		}
	}()
}

// connectTCP makes n connections to dst from inside the namespace and
// counts which endpoint answered each; a failed connection counts as "".
func connectTCP(t *testing.T, path string, dst netip.AddrPort, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	inNetns(t, path, func() {
		for range n {
			c, err := net.DialTimeout("tcp", dst.String(), 2*time.Second)
			if err != nil {
				got[""]++
				continue
			}
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			b := make([]byte, 64)
			k, _ := c.Read(b)
			got[string(b[:k])]++
			c.Close()
		}
	})
	return got
}

// sendUDP sends one datagram to dst from a new socket (a new source port,
// so a new conntrack entry) from inside the namespace, and returns which
// endpoint answered ("" for none).
func sendUDP(t *testing.T, path string, dst netip.AddrPort) string {
	t.Helper()
	var answer string
	inNetns(t, path, func() {
		c, err := net.Dial("udp", dst.String())
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("q")); err != nil {
			return
		}
		b := make([]byte, 64)
		k, _ := c.Read(b)
		answer = string(b[:k])
	})
	return answer
}

// web is a TCP Service on webVIP:80 with endpoints on port 8080; dns a UDP
// Service on dnsVIP:53 with endpoints on port 5353.
func web(eps ...netip.Addr) netplan.Service {
	return service("web", webVIP, corev1.ProtocolTCP, 80, 8080, eps)
}

func dns(eps ...netip.Addr) netplan.Service {
	return service("dns", dnsVIP, corev1.ProtocolUDP, 53, 5353, eps)
}

func service(name string, vip netip.Addr, proto corev1.Protocol, port, target int32, eps []netip.Addr) netplan.Service {
	p := netplan.Port{Protocol: proto, Port: port}
	for _, ip := range eps {
		p.Endpoints = append(p.Endpoints, netplan.Endpoint{IP: ip, Port: target, Node: "n1", Pod: "pod-" + ip.String()})
	}
	return netplan.Service{Namespace: "default", Name: name, ClusterIP: vip, Ports: []netplan.Port{p}}
}

// ruleset builds the ruleset of host n1 for svcs.
func ruleset(t testing.TB, svcs ...netplan.Service) *netplan.Ruleset {
	t.Helper()
	r, err := netplan.BuildRuleset(netplan.RulesetInput{Node: "n1", ClusterCIDR: clusterCIDR, ServiceCIDR: serviceCIDR, Services: svcs})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
