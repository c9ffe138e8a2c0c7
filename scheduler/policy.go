package scheduler

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// Ancestry answers the rollback guard's question about commits. The
// caller implements it over its repository (source.Remote, source.Repo);
// Decide calls it at most once, and only when the candidate is not the
// commit in force.
type Ancestry interface {
	// Descends reports whether commit descendant is commit ancestor or has
	// it in its history; both are full hashes.
	Descends(ancestor, descendant string) (bool, error)
}

// PolicyInput is everything the placement policy decides from: the
// candidate, the view, the placement in force and the agents' settings.
type PolicyInput struct {
	// Candidate is the newest valid commit's manifests; nil when there is
	// none yet.
	Candidate *specs.DesiredState
	// Commit is the candidate's commit hash, which the placement names.
	Commit string
	// Name is how messages name the candidate; "" names it "commit SHORT"
	// (the first 12 characters of Commit), as the leader does.
	Name string
	// Base is the commit whose ancestry the rollback guard checks; ""
	// means Commit. A preview of a working tree passes its HEAD.
	Base string
	// Nodes is the view, dead members included.
	Nodes []Node
	// Previous is the placement in force (Term and Seq set); nil before
	// any.
	Previous *Placement
	// Term is the placing leader's term; 0 keeps Previous's (previews).
	Term uint64
	// Now is the current time, injected; required.
	Now time.Time
	// RescheduleAfter is the dead nodes' grace period (--reschedule-after),
	// and how long the cluster's first placement waits for the members
	// Expect names; 0 means DefaultRescheduleAfter.
	RescheduleAfter time.Duration
	// Rebalance and Settled: see Options.
	Rebalance bool
	Settled   map[string]bool
	// Expect is the cluster size the agents were started with (--expect;
	// 0 for none), Alive how many members are alive in the view.
	Expect, Alive int
	// WaitSince is when the leader began waiting to make the cluster's
	// first placement (Decision.WaitSince of its previous Decide); zero
	// means Now.
	WaitSince time.Time
	// AllowEmpty lets a commit with no pods replace one that runs pods
	// (--allow-empty); AllowRewrite lets a commit that does not descend
	// from the one in force replace it (--allow-rewrite).
	AllowEmpty, AllowRewrite bool
	// Ancestry answers the rollback guard; nil skips the guard (a source
	// that cannot tell).
	Ancestry Ancestry
}

// Verdict is what the placement policy decided.
type Verdict int

const (
	// Placed: Decision.Placement is the placement of the candidate.
	Placed Verdict = iota
	// NoCandidate: there is no valid commit yet.
	NoCandidate
	// WaitForMembers: the cluster's first placement waits for the members
	// --expect names, until Decision.RecheckAt.
	WaitForMembers
	// RefusedEmpty: the candidate gives the cluster no pods while the
	// placement in force runs some, and AllowEmpty is off.
	RefusedEmpty
	// RefusedRollback: the candidate does not descend from the commit in
	// force (a leader whose source lags must not roll the cluster back),
	// and AllowRewrite is off.
	RefusedRollback
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case Placed:
		return "placed"
	case NoCandidate:
		return "nothing to place"
	case WaitForMembers:
		return "waiting"
	case RefusedEmpty:
		return "refused: empty"
	case RefusedRollback:
		return "refused: rollback"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Decision is the outcome of Decide.
type Decision struct {
	Verdict Verdict
	// Placement and Report are Place's, with Verdict Placed.
	Placement Placement
	Report    Report
	// Changed says, with Verdict Placed, whether the placement differs from
	// Previous, or is of a newer term: the leader publishes it then.
	Changed bool
	// Note says why nothing was placed, as `kelpie status` shows it; ""
	// with Verdict Placed.
	Note string
	// Reason is the refusal's message, for errors and logs; "" unless
	// refused.
	Reason string
	// RecheckAt is the earliest time at which Decide, given the same input,
	// would decide differently (a wait or a grace period ends); zero when
	// none is known.
	RecheckAt time.Time
	// WaitSince is set when the cluster's first placement was considered:
	// when its wait for the expected members began. The leader passes it
	// back as PolicyInput.WaitSince.
	WaitSince time.Time
}

// Refused reports whether the policy refused the candidate.
func (d Decision) Refused() bool {
	return d.Verdict == RefusedEmpty || d.Verdict == RefusedRollback
}

// Decide is the leader's placement policy, and what `kelpie plan
// --cluster` previews. In order:
//
//   - With no candidate there is nothing to place.
//   - A candidate that gives the cluster no pods (see PodCount) while the
//     placement in force runs some is refused, unless AllowEmpty.
//   - A candidate that does not descend from the commit in force is
//     refused, unless AllowRewrite or Ancestry is nil: a new leader whose
//     source lags (a stale mirror, a fetch not yet done) must not roll the
//     cluster back. An Ancestry error counts as not descending.
//   - The cluster's first placement waits for Expect members, up to
//     RescheduleAfter after WaitSince, so that a cluster starting up is not
//     packed onto its first hosts: placement is sticky and never
//     rebalances on its own.
//   - Then Place.
//
// Decide fails only when Place does (invalid input, or ErrStaleTerm: a
// newer leader's placement is in force).
func Decide(in PolicyInput) (Decision, error) {
	name := in.Name
	if name == "" {
		name = "commit " + short(in.Commit)
	}
	if in.Candidate == nil {
		return Decision{Verdict: NoCandidate, Note: "no valid commit to place yet"}, nil
	}
	prev := in.Previous
	if prev != nil && prev.Commit != in.Commit {
		if !in.AllowEmpty && len(prev.Assignments) > 0 && PodCount(in.Candidate, in.Nodes) == 0 {
			return Decision{Verdict: RefusedEmpty,
				Note:   name + " has no pods; not placed",
				Reason: fmt.Sprintf("%s refused: it gives the cluster no pods while %d run (start the agents with --allow-empty to allow it)", name, len(prev.Assignments)),
			}, nil
		}
		if !in.AllowRewrite && in.Ancestry != nil {
			base := in.Base
			if base == "" {
				base = in.Commit
			}
			if fwd, err := in.Ancestry.Descends(prev.Commit, base); err != nil || !fwd {
				msg := fmt.Sprintf("%s does not descend from the cluster's commit %s; not placed", name, short(prev.Commit))
				return Decision{Verdict: RefusedRollback, Note: msg, Reason: msg}, nil
			}
		}
	}
	after := in.RescheduleAfter
	if after == 0 {
		after = DefaultRescheduleAfter
	}
	var d Decision
	if prev == nil {
		d.WaitSince = in.WaitSince
		if d.WaitSince.IsZero() {
			d.WaitSince = in.Now
		}
		if until := d.WaitSince.Add(after); in.Expect > 0 && in.Alive < in.Expect && in.Now.Before(until) {
			d.Verdict, d.RecheckAt = WaitForMembers, until
			d.Note = fmt.Sprintf("first placement waits for %d of %d expected members (until %s)", in.Alive, in.Expect, until.Format(time.TimeOnly))
			return d, nil
		}
	}
	sp, rep, err := Place(in.Candidate, in.Nodes, prev, Options{Term: in.Term, Commit: in.Commit, Now: in.Now, RescheduleAfter: after, Rebalance: in.Rebalance, Settled: in.Settled})
	if err != nil {
		return Decision{}, fmt.Errorf("place %s: %w", name, err)
	}
	d.Verdict, d.Placement, d.Report, d.RecheckAt = Placed, sp, rep, rep.RecheckAt
	d.Changed = prev == nil || !sp.Equal(prev) || sp.Term != prev.Term
	return d, nil
}

// PodCount is how many pods desired gives the cluster of nodes: every
// replica of its Deployments and Pods, placeable or not, and one pod per
// node for each DaemonSet, on the nodes it runs on. Jobs and CronJobs, which
// the host runtime does not run yet, count for nothing.
func PodCount(desired *specs.DesiredState, nodes []Node) int {
	ws, _ := workloads(desired)
	n := 0
	for _, w := range ws {
		n += len(w.replicas)
	}
	if desired == nil {
		return n
	}
	for _, obj := range desired.Objects {
		if ds, ok := obj.Obj.(*appsv1.DaemonSet); ok {
			for _, node := range nodes {
				if DaemonSetRunsOn(ds, node) {
					n++
				}
			}
		}
	}
	return n
}

// short abbreviates a commit hash to 12 characters, as status and logs do.
func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}
