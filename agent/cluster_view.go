package agent

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// ClusterView is what GET /api/v1/cluster returns: what the placement
// policy (scheduler.Decide) needs to preview what the leader would do with
// a candidate commit (`kelpie plan --cluster`): the nodes as the scheduler
// sees them, the placement in force, the quorum and the agents' policy
// flags.
type ClusterView struct {
	// Self is the answering node; Leader and Term the leader it follows.
	Self   string `json:"self"`
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
	// Now is the answering node's time, against which dead nodes' grace
	// periods run.
	Now time.Time `json:"now"`
	// RescheduleAfter is the answering node's grace period for dead nodes.
	RescheduleAfter time.Duration `json:"rescheduleAfter"`
	// Nodes are the members, as the scheduler takes them.
	Nodes []scheduler.Node `json:"nodes"`
	// Placement is the placement in force (Term and Seq set); nil before
	// any.
	Placement *scheduler.Placement `json:"placement"`
	// Quorum is the answering node's quorum: Expect (--expect) and Alive
	// decide whether the first placement waits, OK whether the leader may
	// publish a change.
	Quorum QuorumStatus `json:"quorum"`
	// AllowEmpty and AllowRewrite are the answering agent's --allow-empty
	// and --allow-rewrite; a cluster's agents are started alike, so the
	// leader's policy takes the same.
	AllowEmpty   bool `json:"allowEmpty"`
	AllowRewrite bool `json:"allowRewrite"`
	// Network is the networking allocation published with the placement
	// in force (netplan.Encode of a netplan.State: Service IPs and node
	// ports); absent before one.
	Network json.RawMessage `json:"network,omitempty"`
	// NodePortRange is the answering agent's --service-node-port-range
	// ("MIN-MAX"): a preview checks the candidate's nodePorts against it.
	NodePortRange string `json:"nodePortRange,omitempty"`
	// Services are the Services as the answering host serves them now:
	// their IPs, node ports and ready endpoints anywhere in the cluster.
	Services []ServiceStatus `json:"services,omitempty"`
}

// clusterView answers GET /api/v1/cluster; 404 for an agent on its own.
func (a *Agent) clusterView(w http.ResponseWriter, _ *http.Request) {
	if a.cluster == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "this agent is not in a cluster"})
		return
	}
	lead := a.cluster.Leader()
	v := ClusterView{Self: a.cluster.Name(), Leader: lead.Leader, Term: lead.Term, Now: a.clock.Now(),
		RescheduleAfter: a.cfg.RescheduleAfter, Nodes: a.schedulerNodes(),
		AllowEmpty: a.cfg.AllowEmpty, AllowRewrite: a.cfg.AllowRewrite,
		NodePortRange: a.cfg.Network.NodePorts.String(), Services: a.Status().Services}
	v.Quorum = quorumStatus(a.cluster.Quorum())
	if p, ok := a.cluster.Placement(); ok {
		if pub, err := scheduler.Decode(p.Data); err == nil {
			sp := pub.Placement
			sp.Term, sp.Seq = p.Term, p.Seq
			v.Placement = &sp
			v.Network = pub.Network
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// quorumStatus converts gossip's quorum for status and the view.
func quorumStatus(q gossip.Quorum) QuorumStatus {
	return QuorumStatus{OK: q.OK, Expect: q.Expect, Alive: q.Alive, Needed: q.Needed, Reason: q.Reason}
}
