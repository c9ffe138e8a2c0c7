package nethost

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Run runs a command and fails the test when it fails.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// RunQuiet runs a command and ignores a failure: cleanup of what may not
// exist.
func RunQuiet(args ...string) {
	_ = exec.Command(args[0], args[1:]...).Run()
}

// NewBridge makes the bridge name in the root network namespace, holding
// gateway (an address with its prefix length, "10.231.0.1/24"), for the
// test's network namespaces to join; a leftover of the same name (a run
// that ended without its cleanup) is deleted first, and the bridge is
// deleted when the test ends.
func NewBridge(t testing.TB, name, gateway string) {
	t.Helper()
	RunQuiet("ip", "link", "del", name)
	Run(t, "ip", "link", "add", name, "type", "bridge")
	t.Cleanup(func() { RunQuiet("ip", "link", "del", name) })
	Run(t, "ip", "addr", "add", gateway, "dev", name)
	Run(t, "ip", "link", "set", name, "up")
}

// Netns is a named network namespace joined to a bridge by a veth pair: one
// host of a test network.
type Netns struct {
	Name   string // the namespace: /run/netns/Name
	Veth   string // the root side of the veth pair; the other is eth0 inside
	Bridge string // the bridge Veth joins
	Addr   string // eth0's address with its prefix length, "10.231.0.11/24"
}

// Path is the namespace's file.
func (n Netns) Path() string { return "/run/netns/" + n.Name }

// Exists reports whether the namespace is there.
func (n Netns) Exists() bool {
	_, err := os.Stat(n.Path())
	return err == nil
}

// Plug creates the namespace, with lo up and eth0 holding Addr, and joins
// it to the bridge.
func (n Netns) Plug(t testing.TB) {
	t.Helper()
	Run(t, "ip", "netns", "add", n.Name)
	Run(t, "ip", "link", "add", n.Veth, "type", "veth", "peer", "name", "eth0", "netns", n.Name)
	Run(t, "ip", "link", "set", n.Veth, "master", n.Bridge, "up")
	Run(t, "ip", "-n", n.Name, "addr", "add", n.Addr, "dev", "eth0")
	Run(t, "ip", "-n", n.Name, "link", "set", "eth0", "up")
	Run(t, "ip", "-n", n.Name, "link", "set", "lo", "up")
}

// Unplug deletes the namespace and its veth pair, whichever exist: the host
// is gone from the network, with everything inside its namespace.
func (n Netns) Unplug() {
	RunQuiet("ip", "netns", "del", n.Name)
	RunQuiet("ip", "link", "del", n.Veth)
}

// Command returns a command that runs bin with args in the namespace's
// network namespace only. nsenter enters the network namespace alone (not
// `ip netns exec`, which makes a mount namespace of its own: the pods'
// network namespaces a kelpie agent bind-mounts would then be invisible to
// containerd) and execs bin, so the process's pid is bin's.
func (n Netns) Command(bin string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + n.Path(), "--", bin}, args...)...)
}

// Run runs a command in the namespace's network namespace and fails the
// test when it fails.
func (n Netns) Run(t testing.TB, bin string, args ...string) {
	t.Helper()
	if out, err := n.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("in %s: %s %s: %v\n%s", n.Name, bin, strings.Join(args, " "), err, out)
	}
}
