package agent

import (
	"encoding/json"

	"github.com/kelpie-dev/kelpie/gossip"
)

// readyElsewhere is the planner's PlanOptions.ReadyElsewhere: every pod
// the other live hosts report (nodeDetail.Revisions), true when it is
// available there (nodeDetail.Available). A StatefulSet's pod here waits
// for its lower ordinals elsewhere, and is not created while another host
// still reports a pod of its name: one ordinal never runs on two hosts
// that both live. Dead and departed hosts are left out, as for Services:
// their pods move once the leader places them elsewhere. Nil outside a
// cluster.
func (a *Agent) readyElsewhere() map[string]bool {
	if a.cluster == nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range a.cluster.Members() {
		if m.Self || !m.HasStatus || m.State == gossip.StateDead || m.State == gossip.StateLeft {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) != nil {
			continue
		}
		for pod := range d.Revisions {
			if _, ok := out[pod]; !ok {
				out[pod] = false
			}
		}
		for _, pod := range d.Available {
			out[pod] = true
		}
	}
	return out
}
