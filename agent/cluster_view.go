package agent

import (
	"net/http"
	"time"

	"github.com/kelpie-dev/kelpie/scheduler"
)

// ClusterView is what GET /api/v1/cluster returns: the view a scheduler
// needs to preview where a candidate commit would run (`kelpie plan
// --cluster`): the nodes as the scheduler sees them and the placement in
// force.
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
}

// clusterView answers GET /api/v1/cluster; 404 for an agent on its own.
func (a *Agent) clusterView(w http.ResponseWriter, _ *http.Request) {
	if a.cluster == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "this agent is not in a cluster"})
		return
	}
	lead := a.cluster.Leader()
	v := ClusterView{Self: a.cluster.Name(), Leader: lead.Leader, Term: lead.Term, Now: a.clock.Now(),
		RescheduleAfter: a.cfg.RescheduleAfter, Nodes: a.schedulerNodes()}
	if p, ok := a.cluster.Placement(); ok {
		if pub, err := scheduler.Decode(p.Data); err == nil {
			sp := pub.Placement
			sp.Term, sp.Seq = p.Term, p.Seq
			v.Placement = &sp
		}
	}
	writeJSON(w, http.StatusOK, v)
}
