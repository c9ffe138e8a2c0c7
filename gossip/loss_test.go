package gossip

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// lossWindow is how long TestNoFalseDeathUnderLoss runs its nodes under
// packet loss: with ProfileFast each node probes about 90 times in it.
const lossWindow = 45 * time.Second

// dropPackets makes the kernel drop pct percent of the TCP and UDP packets
// to and from ports on loopback (each packet at most once), through an
// nftables table of the test's own, deleted when the test ends. Only the
// test's ports are matched: nothing else on the machine loses a packet.
func dropPackets(t *testing.T, pct int, ports []int) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to add an nftables table that drops packets")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		testenv.Missing(t, "nft (Debian package nftables)")
	}
	set := make([]string, len(ports))
	for i, p := range ports {
		set[i] = strconv.Itoa(p)
	}
	ps := "{ " + strings.Join(set, ", ") + " }"
	table := fmt.Sprintf("kelpie_loss_%d", os.Getpid())
	rules := fmt.Sprintf(`table inet %[1]s {
	chain in {
		type filter hook input priority -10; policy accept;
		iifname "lo" meta l4proto { tcp, udp } th dport %[2]s numgen random mod 100 < %[3]d drop
		iifname "lo" meta l4proto { tcp, udp } th sport %[2]s th dport != %[2]s numgen random mod 100 < %[3]d drop
	}
}
`, table, ps, pct)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s\n%s", err, out, rules)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "inet", table).CombinedOutput(); err != nil {
			t.Errorf("delete nftables table %s: %v\n%s", table, err, out)
		}
	})
}

// TestNoFalseDeathUnderLoss: three nodes with ProfileFast, the failure
// detection `kelpie agent` uses by default, lose 20% of their packets
// (dropped by the kernel, so TCP retransmits as on a bad link) for
// lossWindow: no node is ever declared dead. Then one node stops without
// leaving, and the others do declare it dead: the loss did not blind them.
func TestNoFalseDeathUnderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 45 s")
	}
	cl := startCluster(t, 3, func(i int, c *Config) {
		c.Profile = ProfileFast
		c.tune = nil
	})
	waitFor(t, 30*time.Second, "3 alive members", func() (bool, string) { return converged(cl.nodes, 3) })
	var ports []int
	for _, n := range cl.nodes {
		_, ps, err := net.SplitHostPort(n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		p, err := strconv.Atoi(ps)
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
	}
	dropPackets(t, 20, ports)
	end := time.Now().Add(lossWindow)
	for time.Now().Before(end) {
		for i, n := range cl.nodes {
			for _, m := range n.Members() {
				if m.State != StateAlive {
					t.Fatalf("node %d sees %s %s after %.1fs of 20%% packet loss: a false host loss", i, m.Name, m.State, time.Since(end.Add(-lossWindow)).Seconds())
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cl.nodes[2].Shutdown()
	deadline := time.Now().Add(60 * time.Second)
	for {
		dead := 0
		for _, n := range cl.nodes[:2] {
			for _, m := range n.Members() {
				if m.Name == "n02" && m.State == StateDead {
					dead++
				}
			}
		}
		if dead == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s after n02 stopped, %d of 2 survivors see it dead (20%% packet loss)", dead)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
