package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// Cluster is the membership an agent in a cluster takes part in:
// gossip.Node implements it. The agent reads the view, the leader and the
// placement in force from it, publishes placements through it when it
// leads, and reports its own status through it.
type Cluster interface {
	// Name is this node's name in the cluster.
	Name() string
	// Members is the view, this node included.
	Members() []gossip.Member
	// Leader is the leader this node follows.
	Leader() gossip.Leadership
	// Quorum says whether placement changes may be made.
	Quorum() gossip.Quorum
	// Placement is the placement in force; ok is false before any.
	Placement() (p gossip.Placement, ok bool)
	// PublishPlacement publishes a new placement (leader only, with quorum).
	PublishPlacement(commit string, data []byte) (gossip.Placement, error)
	// SetStatus publishes this node's status.
	SetStatus(s gossip.NodeStatus) error
	// Changes delivers a value whenever the view, the leader, the placement
	// or a status changed.
	Changes() <-chan struct{}
	// Leave tells the others this node leaves, waiting up to timeout.
	Leave(timeout time.Duration) error
}

// leaveTimeout bounds how long a leaving agent waits for its leave to
// reach the others; drainTimeout how long it then takes to stop its pods.
const (
	leaveTimeout = 5 * time.Second
	drainTimeout = 2 * time.Minute
)

// leave is the end of an agent that stops with LeaveOnStop: it tells the
// cluster it leaves (the leader hands its replicas to the others at once)
// and then removes its pods, which now run elsewhere. Claims stay: their
// data is the host's.
func (a *Agent) leave() {
	if err := a.cluster.Leave(leaveTimeout); err != nil {
		a.log.Warn("leaving the cluster", "err", err)
	} else {
		a.log.Info("left the cluster; the leader hands this host's replicas over")
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	actual, err := a.rt.Observe(ctx)
	if err != nil {
		a.log.Warn("drain: observe the host", "err", err)
		return
	}
	res, err := reconciler.Plan(reconciler.Desired{}, actual, reconciler.PlanOptions{Now: a.clock.Now(), Prune: true, AllowEmpty: true})
	if err != nil {
		a.log.Warn("drain: plan", "err", err)
		return
	}
	report := reconciler.Execute(ctx, a.rt, res.Actions, reconciler.ExecOptions{Parallelism: a.cfg.Parallelism})
	if !report.OK() {
		a.log.Warn("drain: some pods could not be removed", "err", report.Err())
		return
	}
	a.log.Info("drained: this host's pods are removed", "actions", len(res.Actions))
}

// nodeDetail is the detail of a node's gossip status (NodeStatus.Data):
// what the leader's scheduler needs to know about the host beyond its
// metadata. It is kept small: it travels in every status.
type nodeDetail struct {
	// Claims are the claims whose data this host holds ("ns/name").
	Claims []string `json:"claims,omitempty"`
	// Head is the newest valid head this host fetched: a push or webhook
	// any member notices reaches the leader this way, which then fetches.
	Head string `json:"head,omitempty"`
	// PodSubnet is the slice of the pod range the host pins (--pod-subnet);
	// "" when the leader chooses.
	PodSubnet string `json:"podSubnet,omitempty"`
	// JobPods are the host's Job pods as observed: the leader's Job
	// controller counts their outcomes.
	JobPods []reconciler.ActualPod `json:"jobPods,omitempty"`
	// Revisions maps the host's pods ("ns/name") to the spec hash they
	// run: the leader paces rolling updates with it.
	Revisions map[string]string `json:"revisions,omitempty"`
	// Available lists the pods ("ns/name") that run here and are Ready
	// (PodStatus.PodReady), for their minReadySeconds (availableAt): the
	// leader rebalances a workload, and paces its rolling update, by them.
	Available []string `json:"available,omitempty"`
	// Pods are the pods that run here with an address, for the Services'
	// endpoints and DNS on every host (Node is left out: it is the
	// member's name).
	Pods []netplan.Pod `json:"pods,omitempty"`
	// LB is the host's LoadBalancer status: its addresses and the ports
	// it could not serve.
	LB *lbDetail `json:"lb,omitempty"`
}

// clusterSync is sync for an agent in a cluster: it fetches and validates
// the head like sync, but the host converges to the placement in force,
// not to the head. The leader places the newest valid head; the others
// keep it fetched, so that they have it when the placement names it.
func (a *Agent) clusterSync(ctx context.Context, reason string) {
	r := a.beginSync(ctx, reason)
	if r == nil {
		return
	}
	if r.fetched && !r.stalled && (a.head == nil || a.head.commit.Hash != r.head.Hash) {
		if t := a.validate(r); t != nil {
			a.head = t
		}
	}
	if a.head != nil && r.head != nil && a.head.commit.Hash == r.head.Hash {
		a.seenHead = r.head.Hash
	}
	if r.refusal != nil && r.head != nil {
		a.setPending(*r.head, r.refusal)
	}

	n, cerr := a.clusterStep(ctx)
	if ctx.Err() != nil {
		return
	}
	r.info.Actions = n
	if cerr != nil && r.transient == nil {
		r.transient = cerr
	}
	if r.refusal == nil && cerr != nil && cerr.Kind.refusal() {
		r.refusal, r.transient = cerr, nil
	}
	a.endSync(r)
}

// clusterStep is what an agent in a cluster does when the view, the
// placement or its head changed: the leader places (publishing when the
// placement changes), and every node converges to the placement in force.
// It returns the actions executed and the failure, if any.
func (a *Agent) clusterStep(ctx context.Context) (int, *SyncError) {
	a.placing.next = a.clock.Now().Add(a.cfg.RescheduleAfter)
	var perr *SyncError
	if !a.cluster.Leader().Self {
		a.jobTrigger = nil // a Job triggered while this node led, not yet published: the caller was told where to retry
		a.placing.waitSince = time.Time{}
		a.placing.note = "" // a note of this node's own time as leader
	} else {
		a.headsSeen()
		perr = a.place()
	}
	n, err := a.adopt(ctx)
	if err == nil {
		err = perr
	}
	a.syncRoutes()
	a.syncServices(ctx)
	a.reportNode()
	a.publish(nil)
	return n, err
}

// placing is the leader's placement bookkeeping between steps: what the
// policy (scheduler.Decide) needs again and what status shows of it.
type placing struct {
	note      string    // why the leader did not publish, for status
	next      time.Time // when the cluster is stepped again (a wait or a dead host's grace period ends)
	waitSince time.Time // when this node, leading, began waiting to make the cluster's first placement
}

// place decides the placement of the newest valid commit on the current
// view with the cluster's policy (scheduler.Decide) and publishes it when
// it differs from the one in force. Only the leader calls it.
func (a *Agent) place() *SyncError {
	lead := a.cluster.Leader()
	cur, hasCur := a.cluster.Placement()
	var prev *scheduler.Placement
	var prevNet, prevJobs json.RawMessage
	var prevRollouts, prevSurges map[string][]string
	if hasCur {
		p := scheduler.Placement{Commit: cur.Commit} // an undecodable placement places nothing
		if pub, err := scheduler.Decode(cur.Data); err == nil {
			p, prevNet, prevJobs, prevRollouts, prevSurges = pub.Placement, pub.Network, pub.Jobs, pub.Rollouts, pub.Surges
		}
		p.Term, p.Seq = cur.Term, cur.Seq
		prev = &p
	}
	t := a.head
	if t == nil && hasCur {
		t, _ = a.commitTarget(cur.Commit)
	}
	in := scheduler.PolicyInput{
		Nodes: a.schedulerNodes(), Previous: prev, Term: lead.Term, Now: a.clock.Now(),
		RescheduleAfter: a.cfg.RescheduleAfter, WaitSince: a.placing.waitSince,
		Rebalance: a.cfg.Rebalance, Settled: a.settled(prev),
		AllowEmpty: a.cfg.AllowEmpty, AllowRewrite: a.cfg.AllowRewrite,
	}
	q := a.cluster.Quorum()
	in.Expect, in.Alive = q.Expect, q.Alive
	if d, ok := a.src.(descender); ok {
		in.Ancestry = d
	}
	var commit *CommitInfo
	jobs, jobsChanged := prevJobs, false
	if t != nil {
		in.Candidate, in.Commit, commit = t.state, t.commit.Hash, &t.commit
		if cand, recs, changed := a.leaderJobs(prevJobs, t); cand != nil {
			in.Candidate, jobs, jobsChanged = cand, recs, changed
		}
	}
	d, err := scheduler.Decide(in)
	if err != nil {
		if errors.Is(err, scheduler.ErrStaleTerm) {
			return nil // a newer leader's placement is in force: this node no longer leads
		}
		return a.newError(KindPlan, commit, err)
	}
	if !d.WaitSince.IsZero() {
		a.placing.waitSince = d.WaitSince
	}
	if !d.RecheckAt.IsZero() && d.RecheckAt.Before(a.placing.next) {
		a.placing.next = d.RecheckAt
	}
	a.placing.note = d.Note
	switch d.Verdict {
	case scheduler.RefusedEmpty:
		return a.newError(KindEmpty, commit, errors.New(d.Reason))
	case scheduler.RefusedRollback:
		if a.head == t {
			a.head = nil // the next fetch validates the head again
		}
		return nil
	case scheduler.Placed:
	default:
		return nil
	}
	network, netChanged, err := a.allocateLeader(prevNet, t, lead.Term)
	if err != nil {
		a.log.Warn("network allocation", "err", err)
	}
	var rollouts, surges map[string][]string
	rolloutsChanged := false
	if hasCur && cur.Commit == t.commit.Hash {
		// Paced against the replicas as the placement in force puts them;
		// a new commit starts from none allowed (its hashes are new).
		rollouts, surges, rolloutsChanged = a.leaderRollouts(t, prevRollouts, prevSurges, d.Placement.Assignments)
	} else {
		rollouts, surges, rolloutsChanged = a.leaderRollouts(t, nil, nil, d.Placement.Assignments)
	}
	if !d.Changed && !netChanged && !jobsChanged && !rolloutsChanged {
		return nil
	}
	sp, rep := d.Placement, d.Report
	pub := scheduler.NewPublished(sp, rep)
	pub.Network, pub.Jobs, pub.Rollouts, pub.Surges = network, jobs, rollouts, surges
	data, err := pub.Encode()
	if err != nil {
		return a.newError(KindPlan, commit, err)
	}
	p, err := a.cluster.PublishPlacement(t.commit.Hash, data)
	switch {
	case errors.Is(err, gossip.ErrNoQuorum):
		a.placing.note = "placement not changed: " + a.cluster.Quorum().Reason
		return nil
	case errors.Is(err, gossip.ErrNotLeader):
		return nil
	case err != nil:
		return a.newError(KindPlan, commit, fmt.Errorf("publish placement: %w", err))
	}
	for _, m := range scheduler.Diff(prev, &sp) {
		a.log.Info("placement", "commit", t.commit.Short(), "term", p.Term, "seq", p.Seq, "move", m.String())
	}
	for _, u := range rep.Unplaceable {
		a.log.Warn("replica not placed", "commit", t.commit.Short(), "replica", u.Replica, "reason", u.Reason)
	}
	a.log.Info("placement published", "commit", t.commit.Short(), "term", p.Term, "seq", p.Seq, "replicas", len(sp.Assignments), "unplaceable", len(rep.Unplaceable))
	return nil
}

// adopt converges the host to the placement in force: the pods placed on
// this node, at the commit the placement names. Before any placement the
// host is left as it is.
func (a *Agent) adopt(ctx context.Context) (int, *SyncError) {
	p, ok := a.cluster.Placement()
	if !ok {
		return 0, nil
	}
	if p.Term != a.adopted.Term || p.Seq != a.adopted.Seq || a.target == nil {
		pub, err := scheduler.Decode(p.Data)
		if err != nil {
			return 0, a.newError(KindPlan, nil, fmt.Errorf("placement %d.%d from %s: %w", p.Term, p.Seq, p.Leader, err))
		}
		t, serr := a.commitTarget(p.Commit)
		if serr == nil && t == nil {
			// Not in the cache yet: the leader fetched it first.
			if f, err := a.src.Fetch(ctx, a.appliedHash()); err == nil && f.Commit.Hash != "" {
				t, serr = a.commitTarget(p.Commit)
			} else if err != nil {
				serr = a.newError(fetchKind(err), nil, fmt.Errorf("fetch commit %.12s of placement %d.%d: %w", p.Commit, p.Term, p.Seq, err))
			}
		}
		if serr != nil {
			return 0, serr
		}
		if t == nil {
			return 0, a.newError(KindFetch, nil, fmt.Errorf("commit %.12s of placement %d.%d is not in the repository yet", p.Commit, p.Term, p.Seq))
		}
		if err := a.checkForward(p); err != nil {
			return 0, a.newError(KindNotFastForward, &t.commit, err)
		}
		a.adoptNetwork(pub.Network)
		a.adoptJobs(pub.Jobs)
		mine := *t
		mine.desired = t.full.Assigned(a.cluster.Name(), pub.Assignments, pub.Volumes)
		// The leader refuses a commit that gives the cluster no pods; a
		// host that the placement leaves empty is emptied.
		mine.allowEmpty = scheduler.PodCount(t.state, a.schedulerNodes()) > 0
		a.target = &mine
		a.adopted = p
		a.placed = pub
		if a.head != nil && a.head.commit.Hash != p.Commit {
			// The head this node validated may be older than the commit
			// the leader placed: were this node to lead next, it must not
			// place it and roll the cluster back. Its next fetch, which
			// refuses anything that does not descend from the placed
			// commit, validates the head again.
			a.head = nil
		}
		if a.cluster.Leader().Self {
			a.log.Debug("placement adopted", "term", p.Term, "seq", p.Seq, "pods", len(mine.desired.Pods))
		} else {
			a.log.Info("placement adopted", "leader", p.Leader, "term", p.Term, "seq", p.Seq, "commit", t.commit.Short(), "pods", len(mine.desired.Pods))
		}
	}
	n, cerr := a.converge(ctx, a.target)
	if cerr == nil {
		a.converged(a.target.commit)
	}
	return n, cerr
}

// checkForward refuses a placement whose commit does not descend from the
// commit this host applied (unless AllowRewrite): a leader's policy never
// places one, so it is stale or forged, and must not roll the host back.
func (a *Agent) checkForward(p gossip.Placement) error {
	applied := a.appliedHash()
	if applied == "" || applied == p.Commit || a.cfg.AllowRewrite {
		return nil
	}
	d, ok := a.src.(descender)
	if !ok {
		return nil
	}
	fwd, err := d.Descends(applied, p.Commit)
	if err != nil {
		return fmt.Errorf("placement %d.%d from %s: check that commit %.12s descends from the applied %.12s: %w", p.Term, p.Seq, p.Leader, p.Commit, applied, err)
	}
	if !fwd {
		return fmt.Errorf("placement %d.%d from %s names commit %.12s, which does not descend from the applied commit %.12s: refused, the host keeps running it (start the agents with --allow-rewrite to allow it)", p.Term, p.Seq, p.Leader, p.Commit, applied)
	}
	return nil
}

// commitTarget loads commit hash for the cluster: from the validated head
// when it is that commit, else from the cache. A nil target and no error
// means the cache does not have the commit.
func (a *Agent) commitTarget(hash string) (*target, *SyncError) {
	if a.head != nil && a.head.commit.Hash == hash {
		return a.head, nil
	}
	if a.target != nil && a.target.commit.Hash == hash && a.target.state != nil {
		return a.target, nil
	}
	f, err := a.src.Commit(hash)
	if err != nil {
		return nil, nil
	}
	t, err := a.load(f)
	if err != nil {
		c := commitInfo(f.Commit)
		return nil, a.newError(KindInvalid, &c, fmt.Errorf("commit %s of the placement does not validate here: %w", c.Short(), err))
	}
	return t, nil
}

// schedulerNodes converts the view for the scheduler.
func (a *Agent) schedulerNodes() []scheduler.Node {
	members := a.cluster.Members()
	out := make([]scheduler.Node, 0, len(members))
	for _, m := range members {
		if m.MetaErr != nil {
			continue
		}
		n := scheduler.Node{
			Name:     m.Name,
			Labels:   m.Meta.Labels,
			Capacity: scheduler.Capacity{CPUMilli: int64(m.Meta.Capacity.CPU), MemoryBytes: int64(m.Meta.Capacity.Memory)},
		}
		switch m.State {
		case gossip.StateDead:
			n.State, n.DownSince = scheduler.NodeDead, m.Since
		case gossip.StateLeft:
			n.State, n.DownSince = scheduler.NodeLeft, m.Since
		}
		if m.HasStatus {
			var d nodeDetail
			if json.Unmarshal(m.Status.Data, &d) == nil {
				n.Volumes = d.Claims
			}
		}
		out = append(out, n)
	}
	return out
}

// reportNode publishes this host's status to the cluster when it changed.
func (a *Agent) reportNode() {
	st := gossip.NodeStatus{Commit: a.appliedHash(), Ready: a.state.LastError == nil || a.state.LastError.Kind.refusal()}
	var d nodeDetail
	for _, p := range a.pods {
		if p.State == "Running" {
			st.PodsRunning++
		}
		if p.PodReady {
			st.PodsReady++
		}
	}
	d.Claims = slices.Sorted(slices.Values(a.claims))
	d.Head = a.seenHead
	d.JobPods = a.jobPods
	d.Revisions = a.revisions()
	var wake time.Time
	if d.Available, wake = a.availableAt(a.clock.Now()); !wake.IsZero() && wake.Before(a.nextCheck) {
		a.nextCheck = wake // a pod becomes available (minReadySeconds): report it then
	}
	if a.net.pin.IsValid() {
		d.PodSubnet = a.net.pin.String()
	}
	d.LB = a.lbDetail()
	d.Pods = a.localPods()
	for i := range d.Pods {
		d.Pods[i].Node = ""
	}
	st.Data, _ = json.Marshal(d)
	key := fmt.Sprintf("%s/%v/%d/%d/%s", st.Commit, st.Ready, st.PodsRunning, st.PodsReady, st.Data)
	if key == a.lastReported {
		return
	}
	if err := a.cluster.SetStatus(st); err != nil {
		a.log.Debug("publish node status", "err", err)
		return
	}
	a.lastReported = key
}

// clusterActual records the claims the host holds, for the node status.
func (a *Agent) clusterActual(actual reconciler.Actual) {
	a.claims = a.claims[:0]
	for _, c := range actual.Claims {
		a.claims = append(a.claims, reconciler.JoinName(c.Namespace, c.Name))
	}
}

// clusterStatus builds the cluster part of the status from the view.
func (a *Agent) clusterStatus() *ClusterStatus {
	lead := a.cluster.Leader()
	q := a.cluster.Quorum()
	cs := &ClusterStatus{
		Self: a.cluster.Name(), Leader: lead.Leader, Term: lead.Term, Election: lead.Reason,
		Quorum: quorumStatus(q),
		Note:   a.placing.note,
	}
	switch {
	case lead.Leader == "":
		cs.Guarantee = "no leader yet: the placement in force stays; nothing is moved"
	case q.Expect > 0 && q.OK:
		cs.Guarantee = fmt.Sprintf("one leader: placement changes need %d of %d members, so a minority side of a partition changes nothing; placements are fenced by term", q.Needed, q.Expect)
	case q.Expect > 0:
		cs.Guarantee = "no quorum: the last placement stays in force and nothing is moved until enough members are back"
	default:
		cs.Guarantee = "without --expect the cluster favours availability: during a partition each side may place; placements are fenced by term and the cluster converges to one placement when it heals"
	}
	pub := a.placed
	if p, ok := a.cluster.Placement(); ok {
		if p.Term != a.adopted.Term || p.Seq != a.adopted.Seq {
			pub, _ = scheduler.Decode(p.Data)
		}
		cs.Placement = &PlacementStatus{Term: p.Term, Seq: p.Seq, Leader: p.Leader, Commit: p.Commit,
			Replicas: len(pub.Assignments), Unplaceable: pub.Unplaceable, Waiting: pub.Waiting}
	}
	for _, m := range a.cluster.Members() {
		ms := MemberStatus{Name: m.Name, Addr: m.Addr, State: string(m.State), Since: m.Since,
			Labels: m.Meta.Labels, Version: m.Meta.Version, Eligible: m.Meta.Eligible, Leader: m.Name == lead.Leader,
			Pods: pub.OnNode(m.Name)}
		if m.HasStatus {
			ms.Commit, ms.PodsRunning, ms.PodsReady, ms.Ready = m.Status.Commit, m.Status.PodsRunning, m.Status.PodsReady, m.Status.Ready
		}
		if ms.Pods == nil {
			ms.Pods = []string{}
		}
		if sl, ok := a.net.state.SliceOf(m.Name); ok {
			ms.PodRange = sl.String()
		}
		cs.Members = append(cs.Members, ms)
	}
	return cs
}

// headsSeen makes the leader fetch when another member reports a head it
// does not have: a push or webhook noticed anywhere reaches the leader.
// Each reported head asks once.
func (a *Agent) headsSeen() {
	members := a.cluster.Members()
	asked := make(map[string]string, len(members)) // member → the head last asked for it: bounded by the members
	for _, m := range members {
		if m.Self || !m.HasStatus {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) != nil || d.Head == "" {
			continue
		}
		asked[m.Name] = d.Head
		if (a.head != nil && a.head.commit.Hash == d.Head) || askedFor(a.headsAsked, d.Head) {
			continue
		}
		a.log.Debug("a member saw a head the leader has not fetched", "member", m.Name, "head", d.Head)
		a.requestSync("member " + m.Name + " saw " + d.Head[:min(12, len(d.Head))])
		if a.headsAsked == nil {
			a.headsAsked = map[string]string{}
		}
		a.headsAsked[m.Name] = d.Head // so that a second member with the same head asks no second sync
	}
	a.headsAsked = asked
}

// askedFor reports whether a sync was asked for head already.
func askedFor(asked map[string]string, head string) bool {
	for _, h := range asked {
		if h == head {
			return true
		}
	}
	return false
}

// settled returns the replicas of placement prev that run, with every
// container ready, on the node prev gives them, as the nodes report it:
// what the leader may rebalance.
func (a *Agent) settled(prev *scheduler.Placement) map[string]bool {
	if prev == nil || !a.cfg.Rebalance {
		return nil
	}
	out := map[string]bool{}
	for _, m := range a.cluster.Members() {
		if m.State != gossip.StateAlive || !m.HasStatus {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) != nil {
			continue
		}
		for _, id := range d.Available {
			if id = slotID(id, prev.Assignments); prev.Assignments[id] == m.Name {
				out[id] = true
			}
		}
	}
	return out
}
