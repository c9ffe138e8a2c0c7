package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/kelpie-dev/kelpie/gossip"
)

// membersOnly is a Cluster whose only working method is Members.
type membersOnly struct {
	Cluster
	ms []gossip.Member
}

func (c *membersOnly) Members() []gossip.Member { return c.ms }

// TestHeadsAskedBounded: the heads members report are remembered per
// member, so a long-lived leader's memory does not grow with every push
// the cluster ever saw (it kept every head before), and each new head
// still asks for exactly one sync.
func TestHeadsAskedBounded(t *testing.T) {
	c := &membersOnly{}
	a := &Agent{cluster: c, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	report := func(heads ...string) {
		c.ms = []gossip.Member{{Name: "self", Self: true}}
		for i, h := range heads {
			data, _ := json.Marshal(nodeDetail{Head: h})
			c.ms = append(c.ms, gossip.Member{Name: fmt.Sprintf("m%d", i), HasStatus: true, Status: gossip.NodeStatus{Data: data}})
		}
	}
	syncs := 0
	for i := range 1000 {
		head := fmt.Sprintf("%040x", i)
		report(head, head, head) // three members saw the same push
		a.syncDue = false
		a.headsSeen()
		if a.syncDue {
			syncs++
		}
		a.syncDue = false
		a.headsSeen() // nothing new: no second sync
		if a.syncDue {
			t.Fatalf("push %d: a second sync for a head already asked for", i)
		}
		if len(a.headsAsked) > 3 {
			t.Fatalf("after %d pushes the leader remembers %d heads, want at most one per member", i+1, len(a.headsAsked))
		}
	}
	if syncs != 1000 {
		t.Errorf("%d syncs asked for 1000 new heads, want one each", syncs)
	}
}
