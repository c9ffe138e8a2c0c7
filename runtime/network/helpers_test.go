package network

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/network/nettest"
)

// Test networks: every test gets its own state dir, its own default bridge
// (nettest.Bridge) and its own /24s from 10.250.0.0/16 (the default network)
// and 10.251.0.0/16 (extra networks; nettest.FreeOctet), addressed only
// inside the namespaces the test creates and on the bridges it deletes when
// it ends.

// testNetSeq numbers the test's pod namespaces and networks.
var testNetSeq atomic.Int32

type testNet struct {
	*Host
	bridge string
	n      int    // the third octet of the test's subnets
	ns     string // the namespace of the test's pods: unique, as are the iptables chains named after it
}

// needCNI ends the test through testenv.Missing unless it runs as root with
// the CNI plugins and iptables installed.
func needCNI(t testing.TB) {
	t.Helper()
	nettest.NeedCNI(t, RequiredPlugins...)
}

// newTestNet makes a Host with a fresh state dir, bridge and subnet, and
// deletes the bridge when the test ends.
func newTestNet(t testing.TB) *testNet {
	t.Helper()
	needCNI(t)
	bridge := nettest.Bridge(t)
	n := nettest.FreeOctet(t, "10.250.")
	h, err := New(Config{
		StateDir:   t.TempDir(),
		PodSubnet:  fmt.Sprintf("10.250.%d.0/24", n),
		BridgeName: bridge,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testNet{Host: h, bridge: bridge, n: n, ns: fmt.Sprintf("t%x-%d", os.Getpid(), testNetSeq.Add(1))}
}

// pod is a pod of the test's namespace with one container publishing ports
// (containerPort, hostPort pairs).
func (tn *testNet) pod(name string, ports ...int32) reconciler.Pod {
	c := reconciler.Container{Name: "app", Image: "example"}
	for i := 0; i+1 < len(ports); i += 2 {
		c.Ports = append(c.Ports, reconciler.Port{ContainerPort: ports[i], HostPort: ports[i+1], Protocol: "TCP"})
	}
	return reconciler.Pod{
		Namespace:  tn.ns,
		Name:       name,
		Labels:     map[string]string{"app": name, "tier": "test"},
		Containers: []reconciler.Container{c},
	}
}

// id is the CNI container ID of the test's pod name.
func (tn *testNet) id(name string) string { return ContainerID(tn.ns, name) }

// setupPod sets a pod up and tears it down when the test ends.
func (tn *testNet) setupPod(t *testing.T, p reconciler.Pod) Sandbox {
	t.Helper()
	t.Cleanup(func() {
		if err := tn.Teardown(context.Background(), p.Namespace, p.Name, p.Networks); err != nil {
			t.Errorf("teardown %s: %v", p.Name, err)
		}
	})
	sb, err := tn.Setup(context.Background(), p)
	if err != nil {
		t.Fatalf("setup %s: %v", p.Name, err)
	}
	return sb
}

// leases lists the IPs host-local has leased on the CNI network cniName, with
// the container each belongs to.
func (tn *testNet) leases(t *testing.T, cniName string) map[string]string {
	t.Helper()
	dir := filepath.Join(tn.leaseDir, cniName)
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if net.ParseIP(e.Name()) == nil {
			continue // last_reserved_ip.0 is host-local's cursor, lock its lock
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		id, _, _ := strings.Cut(string(b), "\n")
		out[e.Name()] = strings.TrimSpace(id)
	}
	return out
}

// inNetNS runs fn in the network namespace at path.
func inNetNS(t *testing.T, path string, fn func() error) {
	t.Helper()
	if err := withNetNS(path, fn); err != nil {
		t.Fatal(err)
	}
}

// listenIn starts a TCP server in the namespace at path on port that
// answers every connection with reply and closes it. It stops when the test
// ends.
func listenIn(t *testing.T, path string, port int, reply string) {
	t.Helper()
	var l net.Listener
	inNetNS(t, path, func() error {
		var err error
		l, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	})
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(reply))
			c.Close()
		}
	}()
}

// dialRead connects to addr (from the namespace at path, or from the host
// when path is "") and returns what the server sends before closing.
func dialRead(t *testing.T, path, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	dial := func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}
	var err error
	if path == "" {
		err = dial()
	} else {
		err = withNetNS(path, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	var b strings.Builder
	buf := make([]byte, 256)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String(), nil
}

// natRules returns the iptables nat table's rules that mention s.
func natRules(t *testing.T, s string) []string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -t nat -S: %v: %s", err, out)
	}
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, s) {
			rules = append(rules, l)
		}
	}
	return rules
}
