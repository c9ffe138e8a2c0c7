// Package nettest helps tests that set up pod networks on this host (the
// network and host packages' tests): it checks for the CNI plugins, and
// gives each test a bridge name and a /24 of its own, so that tests of
// several processes never share an address. It only ever touches the test
// bridges ("kt<pid>-<n>") it names; it never creates one.
package nettest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/runtime/network/link"
)

// NeedCNI ends the test through testenv.Missing unless it runs as root with
// the CNI plugins (network.RequiredPlugins) and iptables installed.
func NeedCNI(t testing.TB, plugins ...string) {
	t.Helper()
	testenv.Root(t)
	for _, p := range plugins {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			testenv.Missing(t, "CNI plugin %s not found in /usr/lib/cni (apt-get install containernetworking-plugins): %v", p, err)
		}
	}
	testenv.Binary(t, "iptables", "iptables")
}

var (
	bridgeSeq atomic.Int32
	sweepOnce sync.Once // deletes bridges that earlier, killed test processes left
)

// Bridge returns a bridge name of the test's own, "kt<pid>-<n>", for the
// default network of the host it sets up, and deletes that bridge when the
// test ends. The first call deletes the test bridges of processes that are
// gone.
func Bridge(t testing.TB) string {
	t.Helper()
	sweepOnce.Do(sweepBridges)
	name := fmt.Sprintf("kt%x-%d", os.Getpid(), bridgeSeq.Add(1))
	t.Cleanup(func() {
		if err := link.Delete(name); err != nil {
			t.Errorf("delete test bridge: %v", err)
		}
	})
	return name
}

// sweepBridges deletes test bridges ("kt<pid>-<n>") whose process is gone.
func sweepBridges() {
	links, _ := os.ReadDir("/sys/class/net")
	for _, l := range links {
		name := l.Name()
		hexPid, _, ok := strings.Cut(strings.TrimPrefix(name, "kt"), "-")
		if !strings.HasPrefix(name, "kt") || !ok || !link.IsBridge(name) {
			continue
		}
		pid, err := strconv.ParseInt(hexPid, 16, 32)
		if err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		_ = link.Delete(name)
	}
}

var octetSeq atomic.Int32

// FreeOctet picks N so that no host interface has an address in
// PREFIX.N.0/24 ("10.250.") and no other test of this process uses it.
func FreeOctet(t testing.TB, prefix string) int {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	used := map[int]bool{}
	for _, a := range addrs {
		s := a.String()
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			octet, _, _ := strings.Cut(rest, ".")
			if v, err := strconv.Atoi(octet); err == nil {
				used[v] = true
			}
		}
	}
	start := (os.Getpid()*7 + int(octetSeq.Add(1))*13) % 250
	for i := 0; i < 250; i++ {
		n := 1 + (start+i)%250
		if !used[n] {
			return n
		}
	}
	t.Fatalf("no free %sN.0/24 for a test network", prefix)
	return 0
}
