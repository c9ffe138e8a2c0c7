package reconciler

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"
)

// ErrEmptyDesired is returned by Plan when the desired state has no pods
// while the host runs some, unless PlanOptions.AllowEmpty: a manifests
// directory that vanished or a wrong path must not wipe a host.
var ErrEmptyDesired = errors.New("the desired state has no pods but the host runs some; refusing to plan their removal")

// PlanOptions tune Plan.
type PlanOptions struct {
	// Now is the current time, for restart back-off. Required: Plan reads
	// no clock.
	Now time.Time
	// Prune deletes pods and networks that are no longer desired. Without
	// it they are kept and listed in PlanResult.Kept (kelpie apply --prune).
	// Claims are never deleted by a plan.
	Prune bool
	// AllowEmpty plans for a desired state without pods even when the host
	// runs pods (kelpie apply --allow-empty).
	AllowEmpty bool
	// RollingUpdates honours the RollingUpdate strategy of Deployments:
	// of the pods of one Deployment whose spec changed, only as many are
	// replaced as its maxUnavailable allows (see Rollout); the others get a
	// Wait, due at once when this plan replaces some of their siblings, and
	// a later plan goes on once the replaced pods run. A loop that plans
	// again after every execution (the agent, Converge) wants it. Without
	// it every changed pod is replaced in one plan, as with strategy
	// Recreate: one plan and one execution converge.
	RollingUpdates bool
	// Privileges, when set, is what the host grants its pods beyond the
	// default isolation (the runtime's flags). A desired pod that asks for
	// more gets no action but a Wait naming each refused field and the
	// flag that would allow it; a pod of that name already on the host is
	// left as it is. Nil plans every pod and leaves the refusal to the
	// runtime, which enforces it either way.
	Privileges *HostPrivileges
	// PodSubnet, when valid, is this host's slice of the cluster pod range
	// (the subnet of its default network): a pod on the default network
	// whose address is outside it, as after the slice changed, is replaced
	// so that it is numbered in the slice. Invalid checks nothing.
	PodSubnet netip.Prefix
	// RolloutAllowed, when not nil, paces rolling updates across hosts: a
	// changed pod of a rolling Deployment that is available is replaced
	// only when it is in the set ("NAMESPACE/NAME", the leader's
	// scheduler.PaceRollouts), and within this host's budget too. Nil
	// paces by this host's budget alone (one host).
	RolloutAllowed map[string]bool
	// SurgeAllowed, with RolloutAllowed, are the replicas ("NAMESPACE/SLOT",
	// SlotName) of rolling Deployments whose hosts may create their new pod
	// beside the old one now (the leader's scheduler.PaceSurges); those of
	// RolloutAllowed are replaced in place. Both nil: this host paces by its
	// own budgets (one host).
	SurgeAllowed map[string]bool
	// ReadyElsewhere, in a cluster, holds the pods other hosts report
	// ("NAMESPACE/NAME"), true when Ready: a StatefulSet's pod here waits
	// for lower ordinals that run elsewhere (plan_statefulset.go). Nil on
	// one host, where an ordinal not desired here runs nowhere.
	ReadyElsewhere map[string]bool
	// HashElsewhere, with ReadyElsewhere, is the spec hash each of those
	// pods runs: a StatefulSet's rolling update waits here until the
	// higher ordinals run the new template on their hosts.
	HashElsewhere map[string]string
	// StatefulReplicas, in a cluster, is the replica count of every
	// StatefulSet of the commit ("NAMESPACE/NAME"; a set not listed has
	// none): a pod a scale down removes here waits for the higher ordinals
	// on other hosts to go first. Nil on one host.
	StatefulReplicas map[string]int
}

// PlanResult is a plan: the actions that converge the host, and what the
// plan deliberately leaves alone.
type PlanResult struct {
	// Actions, sorted by stage, then subject (type, namespace, name,
	// container).
	Actions []Action
	// Waiting lists what needs an action later: containers whose restart
	// back-off has not elapsed (Until says when), failed pods that their
	// restart policy does not retry (zero Until), and changed pods a
	// rolling update holds back (Until is PlanOptions.Now when the plan
	// replaces their siblings: plan again once it is executed).
	Waiting []Wait
	// Kept lists what is no longer desired but stays: pods and networks
	// while pruning is off or still in use, and every claim (their data is
	// never removed by a plan).
	Kept []Kept
	// NextCheck is the earliest Until of Waiting; zero when nothing waits
	// for a time. A loop that wants back-off honoured plans again then.
	NextCheck time.Time
	// Continue reports that the plan replaces some pods of a rolling update
	// and holds others back: plan again as soon as it is executed (the
	// replaced pods run by then) to go on with the next ones. NextCheck is
	// PlanOptions.Now then.
	Continue bool
	// Pending reports that a rolling update holds pods back for pods that
	// are coming up: they run but are not available yet (not Ready, or
	// Ready for less than minReadySeconds). Plan again at NextCheck, or
	// when their readiness changes, to go on.
	Pending bool
}

// Empty reports whether the plan has no actions.
func (r PlanResult) Empty() bool { return len(r.Actions) == 0 }

// Wait is something that needs an action later, not now.
type Wait struct {
	Subject Subject `json:"subject"`
	Reason  string  `json:"reason"`
	// Until is when the action becomes due; zero when only a new spec
	// changes anything.
	Until time.Time `json:"until,omitzero"`
}

// String formats the wait: "container default/web-0/httpd: REASON".
func (w Wait) String() string { return w.Subject.String() + ": " + w.Reason }

// Kept is something no longer desired that the plan leaves in place.
type Kept struct {
	Subject Subject `json:"subject"`
	Reason  string  `json:"reason"`
}

// String formats the kept subject: "pod default/old: REASON".
func (k Kept) String() string { return k.Subject.String() + ": " + k.Reason }

// Plan compares what the host should run with what it runs and returns
// the actions that converge the two. It is pure: no I/O, no clock (the
// time is opts.Now), the same inputs always give the same plan.
//
// Stages, each completing before the next:
//
//  1. StageSetup: networks created or updated (spec hash changed), claims created;
//  2. StageRemovePods: pods no longer desired deleted (only with opts.Prune),
//     and those desired.Remove lists (always);
//  3. StagePods: pods created, replaced (spec hash changed, sandbox gone,
//     unexpected containers) or updated (missing containers recreated);
//     a Job's pod (Owner kind Job) is never replaced for a changed spec
//     hash (its Job's identity says when it runs anew), and once finished
//     it gets no action at all: it stays, with its logs, until the Job
//     controller lists it in desired.Remove;
//     with opts.RollingUpdates, a Deployment's changed pods are replaced a
//     few at a time (Rollout) and the others wait;
//  4. StageContainers: exited containers restarted as their pod's restart
//     policy says (Always: any exit; OnFailure: non-zero exit; Never: none),
//     each after its back-off (Backoff) since it exited, created ones started;
//  5. StageTeardown: networks no longer desired deleted (only with
//     opts.Prune, and only when no pod that stays uses them).
//
// Claims are never deleted. A container whose back-off has not elapsed
// gets no action but a Wait. Without opts.RollingUpdates, executing the
// actions and planning again against the new actual state gives a plan
// without actions; with it, repeating that converges in at most
// replicas/maxUnavailable rounds per Deployment.
//
// Plan returns ErrEmptyDesired when desired has no pods while actual has
// some, unless opts.AllowEmpty. It returns an error for an inconsistent
// input: duplicates, or a pod that uses a network or claim desired lacks.
func Plan(desired Desired, actual Actual, opts PlanOptions) (PlanResult, error) {
	if opts.Now.IsZero() {
		return PlanResult{}, errors.New("plan: PlanOptions.Now is zero; pass the current time")
	}
	desired = bindSlots(desired, actual, opts.RollingUpdates)
	if err := checkDesired(&desired); err != nil {
		return PlanResult{}, fmt.Errorf("plan: %w", err)
	}
	actualPods := make(map[string]*ActualPod, len(actual.Pods))
	for i := range actual.Pods {
		a := &actual.Pods[i]
		key := JoinName(a.Namespace, a.Name)
		if _, dup := actualPods[key]; dup {
			return PlanResult{}, fmt.Errorf("plan: the actual state lists pod %s twice", key)
		}
		actualPods[key] = a
	}
	if n := len(actual.Pods) - removed(desired.Remove, actualPods); len(desired.Pods) == 0 && n > 0 && !opts.AllowEmpty {
		return PlanResult{}, fmt.Errorf("plan: %w (%d running)", ErrEmptyDesired, n)
	}
	p := &planner{opts: opts}
	used := p.pods(desired.Pods, desired.Remove, actualPods)
	p.networks(desired.Networks, actual.Networks, used)
	p.claims(desired.Claims, actual.Claims)
	p.finish()
	return p.res, nil
}

// planner accumulates one plan.
type planner struct {
	opts  PlanOptions
	res   PlanResult
	slots slotState
}

// act adds an action.
func (p *planner) act(a Action) { p.res.Actions = append(p.res.Actions, a) }

// wait adds a wait.
func (p *planner) wait(s Subject, until time.Time, format string, args ...any) {
	p.res.Waiting = append(p.res.Waiting, Wait{Subject: s, Reason: fmt.Sprintf(format, args...), Until: until})
}

// keep adds a kept subject.
func (p *planner) keep(s Subject, format string, args ...any) {
	p.res.Kept = append(p.res.Kept, Kept{Subject: s, Reason: fmt.Sprintf(format, args...)})
}

// networks plans the host's networks. used maps each network a staying
// pod joins to one such pod.
func (p *planner) networks(desired []Network, actual []ActualNetwork, used map[string]string) {
	have := make(map[string]ActualNetwork, len(actual))
	for _, a := range actual {
		have[a.Name] = a
	}
	want := make(map[string]bool, len(desired))
	for i := range desired {
		d := &desired[i]
		want[d.Name] = true
		s := Subject{Type: SubjectNetwork, Name: d.Name}
		a, ok := have[d.Name]
		switch {
		case !ok:
			p.act(Action{Kind: Create, Subject: s, Reason: "not present", Stage: StageSetup, Network: d})
		case a.Hash != d.Hash:
			p.act(Action{Kind: Update, Subject: s, Reason: changed(a.Hash, d.Hash), Stage: StageSetup, Network: d})
		}
	}
	for _, a := range actual {
		if want[a.Name] {
			continue
		}
		s := Subject{Type: SubjectNetwork, Name: a.Name}
		switch pod, inUse := used[a.Name]; {
		case inUse:
			p.keep(s, "no longer desired; still used by pod %s", pod)
		case p.opts.Prune:
			p.act(Action{Kind: Delete, Subject: s, Reason: "no longer desired", Stage: StageTeardown})
		default:
			p.keep(s, "no longer desired; kept because pruning is off")
		}
	}
}

// claims plans the host's claims: created when missing, never deleted.
func (p *planner) claims(desired []Claim, actual []ActualClaim) {
	have := make(map[string]bool, len(actual))
	for _, a := range actual {
		have[JoinName(a.Namespace, a.Name)] = true
	}
	want := make(map[string]bool, len(desired))
	for i := range desired {
		d := &desired[i]
		key := JoinName(d.Namespace, d.Name)
		want[key] = true
		if !have[key] {
			p.act(Action{Kind: Create, Subject: Subject{Type: SubjectClaim, Namespace: d.Namespace, Name: d.Name}, Reason: "not present", Stage: StageSetup, Claim: d})
		}
	}
	for _, a := range actual {
		if !want[JoinName(a.Namespace, a.Name)] {
			p.keep(Subject{Type: SubjectClaim, Namespace: a.Namespace, Name: a.Name},
				"no longer desired; a claim's data is only removed by an explicit volume removal")
		}
	}
}

// finish sorts the plan and computes NextCheck.
func (p *planner) finish() {
	r := &p.res
	sort.SliceStable(r.Actions, func(i, j int) bool {
		if r.Actions[i].Stage != r.Actions[j].Stage {
			return r.Actions[i].Stage < r.Actions[j].Stage
		}
		return r.Actions[i].Subject.less(r.Actions[j].Subject)
	})
	sort.SliceStable(r.Waiting, func(i, j int) bool { return r.Waiting[i].Subject.less(r.Waiting[j].Subject) })
	sort.SliceStable(r.Kept, func(i, j int) bool { return r.Kept[i].Subject.less(r.Kept[j].Subject) })
	for _, w := range r.Waiting {
		if !w.Until.IsZero() && (r.NextCheck.IsZero() || w.Until.Before(r.NextCheck)) {
			r.NextCheck = w.Until
		}
	}
}

// checkDesired rejects a desired state Expand cannot produce: duplicate
// names, or pods using networks or claims it does not list.
func checkDesired(d *Desired) error {
	networks := map[string]bool{}
	for _, n := range d.Networks {
		if networks[n.Name] {
			return fmt.Errorf("network %s is desired twice", n.Name)
		}
		networks[n.Name] = true
	}
	claims := map[string]bool{}
	for _, c := range d.Claims {
		key := JoinName(c.Namespace, c.Name)
		if claims[key] {
			return fmt.Errorf("claim %s is desired twice", key)
		}
		claims[key] = true
	}
	pods := map[string]bool{}
	for i := range d.Pods {
		pod := &d.Pods[i]
		key := JoinName(pod.Namespace, pod.Name)
		if pods[key] {
			return fmt.Errorf("pod %s is desired twice", key)
		}
		pods[key] = true
		for _, n := range pod.Networks {
			if !networks[n] {
				return fmt.Errorf("pod %s joins network %s, which is not desired", key, n)
			}
		}
		for _, v := range pod.Volumes {
			if c, ok := v.Source.(Claim); ok && !claims[JoinName(c.Namespace, c.Name)] {
				return fmt.Errorf("pod %s uses claim %s, which is not desired", key, JoinName(c.Namespace, c.Name))
			}
		}
	}
	for _, r := range d.Remove {
		if key := JoinName(r.Namespace, r.Name); pods[key] {
			return fmt.Errorf("pod %s is both desired and to remove", key)
		}
	}
	return nil
}

// changed is the reason of a spec change.
func changed(from, to string) string {
	return "spec changed: " + shortHash(from) + " → " + shortHash(to)
}

// removed counts the pods of remove that the host has.
func removed(remove []Removal, actual map[string]*ActualPod) int {
	n := 0
	for _, r := range remove {
		if _, ok := actual[JoinName(r.Namespace, r.Name)]; ok {
			n++
		}
	}
	return n
}
