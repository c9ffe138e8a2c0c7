package routes

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// The test "hosts" are network namespaces named krt-PID-N-NAME; nothing of
// these tests lives in the machine's own namespace.
var nsSeq atomic.Int32

// sweep deletes the namespaces of test processes that are gone.
func sweep() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		f := strings.Split(e.Name(), "-")
		if len(f) < 3 || f[0] != "krt" {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			_ = exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
}

// host is a test host: a network namespace with a Syncer in it.
type host struct {
	t    *testing.T
	name string // the node name
	ns   string // the namespace's name
	s    *Syncer
}

// newHost makes a namespace with lo up and a Syncer in it; both go when
// the test ends.
func newHost(t *testing.T, name string, cfg Config) *host {
	t.Helper()
	testenv.Root(t)
	testenv.Binary(t, "ip", "iproute2")
	sweep()
	h := &host{t: t, name: name, ns: fmt.Sprintf("krt-%d-%d-%s", os.Getpid(), nsSeq.Add(1), name)}
	run(t, "ip", "netns", "add", h.ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", h.ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", h.ns, err, out)
		}
	})
	h.ip("link", "set", "lo", "up")
	s, err := NewAt("/run/netns/"+h.ns, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	h.s = s
	return h
}

// run runs a command and fails the test when it fails.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ip runs `ip -n NS ARGS`.
func (h *host) ip(args ...string) string {
	h.t.Helper()
	return run(h.t, append([]string{"ip", "-n", h.ns}, args...)...)
}

// link joins a and b with a veth pair, named ifa in a and ifb in b.
func link(t *testing.T, a *host, ifa string, b *host, ifb string) {
	t.Helper()
	a.ip("link", "add", ifa, "type", "veth", "peer", "name", ifb, "netns", b.ns)
	a.ip("link", "set", ifa, "up")
	b.ip("link", "set", ifb, "up")
}

// podBridge gives the host a bridge holding addr (its slice's gateway,
// with the slice's length), where a pod's address would be.
func (h *host) podBridge(addr string) {
	h.t.Helper()
	h.ip("link", "add", "pod0", "type", "bridge")
	h.ip("addr", "add", addr, "dev", "pod0")
	h.ip("link", "set", "pod0", "up")
}

// in runs f on a thread of its own inside the host's namespace; sockets f
// opens stay in it. The thread is never handed back to the runtime: it ends
// with its goroutine.
func (h *host) in(f func()) {
	h.t.Helper()
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromPath("/run/netns/" + h.ns)
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	if err := <-done; err != nil {
		h.t.Fatal(err)
	}
}

// sysctl writes a /proc/sys/net value in the host's namespace.
func (h *host) sysctl(key, value string) {
	h.t.Helper()
	var err error
	h.in(func() { err = os.WriteFile("/proc/sys/net/"+key, []byte(value), 0o644) })
	if err != nil {
		h.t.Fatal(err)
	}
}

// serve listens on addr:port in the host's namespace and answers each
// connection with a greeting, until the test ends.
func (h *host) serve(addr string, port int) {
	h.t.Helper()
	var ln net.Listener
	var err error
	h.in(func() { ln, err = net.Listen("tcp4", net.JoinHostPort(addr, strconv.Itoa(port))) })
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s\n", h.name)
			c.Close()
		}
	}()
}

// fetch connects from src in the host's namespace to dst:port and returns
// the greeting.
func (h *host) fetch(src, dst string, port int) (string, error) {
	h.t.Helper()
	var c net.Conn
	var err error
	h.in(func() {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err = d.Dial("tcp4", net.JoinHostPort(dst, strconv.Itoa(port)))
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}

// snapshot is everything Sync may change in the host's namespace, as ip and
// bridge print it (IPv4 only: IPv6 addresses change state on their own).
func (h *host) snapshot() string {
	h.t.Helper()
	s := h.ip("-d", "-4", "route", "show", "table", "all")
	s += h.ip("-o", "link", "show") // -d would add timers that tick
	if strings.Contains(s, DefaultDevice) {
		s += h.ip("-d", "-o", "link", "show", "dev", DefaultDevice)
	}
	s += h.ip("-4", "-o", "addr", "show")
	s += h.ip("neigh", "show", "nud", "permanent")
	s += run(h.t, "bridge", "-n", h.ns, "fdb", "show")
	return s
}

// sync computes the host's routes with netplan.Routes, as the agent will,
// and programs them.
func (h *host) sync(state *netplan.State, addr string, mode netplan.PodNetworkMode, peers ...netplan.Peer) []string {
	h.t.Helper()
	self, err := h.s.Host(h.name, netip.MustParseAddr(addr), mode)
	if err != nil {
		h.t.Fatal(err)
	}
	set, err := netplan.Routes(state, self, peers)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(set.Unrouted) > 0 {
		h.t.Fatalf("%s: unrouted peers: %+v", h.name, set.Unrouted)
	}
	ch, err := h.s.Sync(set)
	if err != nil {
		h.t.Fatalf("%s: Sync: %v (changes %q)", h.name, err, ch)
	}
	for _, c := range ch {
		h.t.Logf("%s: %s", h.name, c)
	}
	return ch
}

// peer is an alive peer at addr.
func peer(name, addr string) netplan.Peer {
	return netplan.Peer{Name: name, State: scheduler.NodeAlive, Addr: netip.MustParseAddr(addr)}
}

// state holds the test cluster's slices.
func state(slices map[string]string) *netplan.State {
	st := &netplan.State{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), Slices: map[string]netplan.Slice{}}
	for n, p := range slices {
		st.Slices[n] = netplan.Slice{Prefix: netip.MustParsePrefix(p)}
	}
	return st
}

// needVXLAN ends the test through testenv.Missing when the kernel makes no
// VXLAN devices.
func needVXLAN(t *testing.T, h *host) {
	t.Helper()
	out, err := exec.Command("ip", "-n", h.ns, "link", "add", "vxprobe", "type", "vxlan", "id", "9", "dstport", "4789").CombinedOutput()
	if err != nil {
		testenv.Missing(t, "the kernel makes no VXLAN devices (CONFIG_VXLAN): %v: %s", err, out)
	}
	h.ip("link", "del", "vxprobe")
}

// itoa formats an int.
func itoa(i int) string { return strconv.Itoa(i) }

// mustAddr parses an address.
func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
