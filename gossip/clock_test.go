package gossip

import (
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/clock/clocktest"
)

// TestElectionUsesInjectedClock: the settle period is measured on the
// injected clock; no wall time needs to pass for a claim.
func TestElectionUsesInjectedClock(t *testing.T) {
	clk := clocktest.At(t0)
	cl := startCluster(t, 1, func(i int, c *Config) {
		c.Clock = clk
		c.SettlePeriod = time.Hour
	})
	n := cl.nodes[0]
	n.step()
	if l := n.Leader(); l.Self || l.Leader != "" {
		t.Fatalf("claimed before the settle period: %+v", l)
	}
	clk.Advance(59 * time.Minute)
	n.step()
	if l := n.Leader(); l.Self {
		t.Fatalf("claimed after 59 of 60 minutes: %+v", l)
	}
	clk.Advance(time.Minute)
	n.step()
	if l := n.Leader(); !l.Self || l.Term != 1 {
		t.Fatalf("no claim once settled: %+v", l)
	}
}
