package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/specs"
)

// Full commit hashes of the policy tests: old is the cluster's, next
// descends from it, other does not.
var (
	oldCommit   = strings.Repeat("a", 40)
	nextCommit  = strings.Repeat("b", 40)
	otherCommit = strings.Repeat("c", 40)
)

// fakeAncestry knows that next descends from old; it counts its calls.
type fakeAncestry struct {
	calls int
	err   error
}

func (f *fakeAncestry) Descends(ancestor, descendant string) (bool, error) {
	f.calls++
	if f.err != nil {
		return false, f.err
	}
	return ancestor == descendant || (ancestor == oldCommit && descendant == nextCommit), nil
}

// TestDecide is the placement policy, case by case: the wait for --expect
// members, the empty-commit refusal, the rollback guard, then Place.
func TestDecide(t *testing.T) {
	const after = 5 * time.Second
	three := []Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}
	running := &Placement{Term: 2, Seq: 3, Commit: oldCommit, Assignments: assignments("default/web-0", "n1", "default/web-1", "n2")}
	idle := &Placement{Term: 2, Seq: 3, Commit: oldCommit, Assignments: map[string]string{}}
	web := state(deploy("web", 2))
	nothing := state(pvc("data"))
	only := func(sel string) *specs.DesiredState { return state(daemonSet("agent", selector("role", sel))) }
	labelled := []Node{mkNode("n1", labels("role", "edge")), mkNode("n2")}

	type want struct {
		verdict   Verdict
		changed   bool
		note      string
		reason    string
		recheckAt time.Time
		waitSince time.Time
		replicas  int
		ancestry  int // calls to Descends
	}
	tests := []struct {
		name string
		in   PolicyInput
		err  error // fake ancestry's error
		want want
	}{
		{
			name: "no valid commit yet",
			in:   PolicyInput{Nodes: three, Previous: running, Term: 2},
			want: want{verdict: NoCandidate, note: "no valid commit to place yet"},
		},
		{
			name: "first placement waits for the expected members",
			in:   PolicyInput{Candidate: web, Commit: nextCommit, Nodes: three[:1], Term: 1, Expect: 3, Alive: 1},
			want: want{verdict: WaitForMembers, note: "first placement waits for 1 of 3 expected members (until 12:00:05)",
				recheckAt: now.Add(after), waitSince: now},
		},
		{
			name: "the wait runs from when it began",
			in: PolicyInput{Candidate: web, Commit: nextCommit, Nodes: three[:1], Term: 1, Expect: 3, Alive: 1,
				WaitSince: now.Add(-2 * time.Second)},
			want: want{verdict: WaitForMembers, note: "first placement waits for 1 of 3 expected members (until 12:00:03)",
				recheckAt: now.Add(3 * time.Second), waitSince: now.Add(-2 * time.Second)},
		},
		{
			name: "the wait ends: the first placement takes the members there are",
			in: PolicyInput{Candidate: web, Commit: nextCommit, Nodes: three[:1], Term: 1, Expect: 3, Alive: 1,
				WaitSince: now.Add(-after)},
			want: want{verdict: Placed, changed: true, replicas: 2, waitSince: now.Add(-after)},
		},
		{
			name: "the expected members are there",
			in:   PolicyInput{Candidate: web, Commit: nextCommit, Nodes: three, Term: 1, Expect: 3, Alive: 3},
			want: want{verdict: Placed, changed: true, replicas: 2, waitSince: now},
		},
		{
			name: "without --expect the first placement does not wait",
			in:   PolicyInput{Candidate: web, Commit: nextCommit, Nodes: three[:1], Term: 1, Alive: 1},
			want: want{verdict: Placed, changed: true, replicas: 2, waitSince: now},
		},
		{
			name: "a later placement does not wait",
			in:   PolicyInput{Candidate: web, Commit: nextCommit, Nodes: three[:1], Previous: running, Term: 2, Expect: 3, Alive: 1, Ancestry: &fakeAncestry{}},
			want: want{verdict: Placed, changed: true, replicas: 2, ancestry: 1},
		},
		{
			name: "an empty commit is refused while pods run",
			in:   PolicyInput{Candidate: nothing, Commit: nextCommit, Nodes: three, Previous: running, Term: 2, Ancestry: &fakeAncestry{}},
			want: want{verdict: RefusedEmpty, note: "commit bbbbbbbbbbbb has no pods; not placed",
				reason: "commit bbbbbbbbbbbb refused: it gives the cluster no pods while 2 run (start the agents with --allow-empty to allow it)"},
		},
		{
			name: "an empty commit is refused before the rollback guard",
			in:   PolicyInput{Candidate: nothing, Commit: otherCommit, Nodes: three, Previous: running, Term: 2, Ancestry: &fakeAncestry{}},
			want: want{verdict: RefusedEmpty, note: "commit cccccccccccc has no pods; not placed",
				reason: "commit cccccccccccc refused: it gives the cluster no pods while 2 run (start the agents with --allow-empty to allow it)"},
		},
		{
			name: "--allow-empty places an empty commit",
			in:   PolicyInput{Candidate: nothing, Commit: nextCommit, Nodes: three, Previous: running, Term: 2, AllowEmpty: true},
			want: want{verdict: Placed, changed: true},
		},
		{
			name: "an empty commit replaces one that runs nothing",
			in:   PolicyInput{Candidate: nothing, Commit: nextCommit, Nodes: three, Previous: idle, Term: 2},
			want: want{verdict: Placed, changed: true},
		},
		{
			name: "the empty commit in force is not refused again",
			in:   PolicyInput{Candidate: nothing, Commit: oldCommit, Nodes: three, Previous: running, Term: 2},
			want: want{verdict: Placed, changed: true},
		},
		{
			name: "a DaemonSet that runs on a node gives the cluster pods",
			in:   PolicyInput{Candidate: only("edge"), Commit: nextCommit, Nodes: labelled, Previous: running, Term: 2},
			want: want{verdict: Placed, changed: true},
		},
		{
			name: "a DaemonSet that runs on no node gives it none",
			in:   PolicyInput{Candidate: only("core"), Commit: nextCommit, Nodes: labelled, Previous: running, Term: 2},
			want: want{verdict: RefusedEmpty, note: "commit bbbbbbbbbbbb has no pods; not placed",
				reason: "commit bbbbbbbbbbbb refused: it gives the cluster no pods while 2 run (start the agents with --allow-empty to allow it)"},
		},
		{
			name: "a commit that does not descend from the cluster's is refused",
			in:   PolicyInput{Candidate: web, Commit: otherCommit, Nodes: three, Previous: running, Term: 2, Ancestry: &fakeAncestry{}},
			want: want{verdict: RefusedRollback, ancestry: 1,
				note:   "commit cccccccccccc does not descend from the cluster's commit aaaaaaaaaaaa; not placed",
				reason: "commit cccccccccccc does not descend from the cluster's commit aaaaaaaaaaaa; not placed"},
		},
		{
			name: "an ancestry that cannot tell refuses",
			in:   PolicyInput{Candidate: web, Commit: nextCommit, Nodes: three, Previous: running, Term: 2, Ancestry: &fakeAncestry{}},
			err:  errors.New("object not found"),
			want: want{verdict: RefusedRollback, ancestry: 1,
				note:   "commit bbbbbbbbbbbb does not descend from the cluster's commit aaaaaaaaaaaa; not placed",
				reason: "commit bbbbbbbbbbbb does not descend from the cluster's commit aaaaaaaaaaaa; not placed"},
		},
		{
			name: "--allow-rewrite places it",
			in:   PolicyInput{Candidate: web, Commit: otherCommit, Nodes: three, Previous: running, Term: 2, Ancestry: &fakeAncestry{}, AllowRewrite: true},
			want: want{verdict: Placed, changed: true, replicas: 2},
		},
		{
			name: "no ancestry, no guard",
			in:   PolicyInput{Candidate: web, Commit: otherCommit, Nodes: three, Previous: running, Term: 2},
			want: want{verdict: Placed, changed: true, replicas: 2},
		},
		{
			name: "a preview names its candidate and checks its base",
			in: PolicyInput{Candidate: web, Commit: "worktree", Name: "the working tree", Base: otherCommit,
				Nodes: three, Previous: running, Ancestry: &fakeAncestry{}},
			want: want{verdict: RefusedRollback, ancestry: 1,
				note:   "the working tree does not descend from the cluster's commit aaaaaaaaaaaa; not placed",
				reason: "the working tree does not descend from the cluster's commit aaaaaaaaaaaa; not placed"},
		},
		{
			name: "a preview on a base that descends",
			in: PolicyInput{Candidate: web, Commit: "worktree", Name: "the working tree", Base: nextCommit,
				Nodes: three, Previous: running, Ancestry: &fakeAncestry{}},
			want: want{verdict: Placed, changed: true, replicas: 2, ancestry: 1},
		},
		{
			name: "the commit in force, placed alike: nothing to publish, no ancestry asked",
			in:   PolicyInput{Candidate: web, Commit: oldCommit, Nodes: three, Previous: running, Term: 2, Ancestry: &fakeAncestry{}},
			want: want{verdict: Placed, replicas: 2},
		},
		{
			name: "the commit in force under a new leader's term is published again",
			in:   PolicyInput{Candidate: web, Commit: oldCommit, Nodes: three, Previous: running, Term: 3, Ancestry: &fakeAncestry{}},
			want: want{verdict: Placed, changed: true, replicas: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now, tc.in.RescheduleAfter = now, after
			fa, _ := tc.in.Ancestry.(*fakeAncestry)
			if fa != nil {
				fa.err = tc.err
			}
			d, err := Decide(tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			got := want{verdict: d.Verdict, changed: d.Changed, note: d.Note, reason: d.Reason, recheckAt: d.RecheckAt,
				waitSince: d.WaitSince, replicas: len(d.Placement.Assignments)}
			if fa != nil {
				got.ancestry = fa.calls
			}
			if got != tc.want {
				t.Errorf("Decide:\n got %+v\nwant %+v", got, tc.want)
			}
			if d.Refused() != (tc.want.verdict == RefusedEmpty || tc.want.verdict == RefusedRollback) {
				t.Errorf("Refused() = %v for verdict %s", d.Refused(), d.Verdict)
			}
			if d.Verdict == Placed && d.Placement.Commit != tc.in.Commit {
				t.Errorf("placement of commit %q, want %q", d.Placement.Commit, tc.in.Commit)
			}
		})
	}
}

// TestDecidePlacesAsPlace: once the policy lets a candidate through, its
// placement and report are Place's.
func TestDecidePlacesAsPlace(t *testing.T) {
	nodes := []Node{mkNode("n1", capacity(1000, "")), mkNode("n2", dead(time.Second)), mkNode("n3")}
	prev := &Placement{Term: 1, Seq: 1, Commit: oldCommit, Assignments: assignments("default/web-0", "n2", "default/web-1", "n3")}
	desired := state(deploy("web", 3, requests("600m", "")))
	in := PolicyInput{Candidate: desired, Commit: nextCommit, Nodes: nodes, Previous: prev, Term: 1, Now: now, RescheduleAfter: time.Minute}
	d, err := Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	p, r := mustPlace(t, desired, nodes, prev, Options{Term: 1, Commit: nextCommit, Now: now, RescheduleAfter: time.Minute})
	if !d.Placement.Equal(&p) || d.Placement.Seq != p.Seq || len(d.Report.Waiting) != len(r.Waiting) || len(d.Report.Waiting) != 1 {
		t.Errorf("Decide placed %+v (report %+v), Place %+v (report %+v)", d.Placement, d.Report, p, r)
	}
	if !d.RecheckAt.Equal(r.RecheckAt) || d.RecheckAt.IsZero() {
		t.Errorf("RecheckAt %v, want Place's %v", d.RecheckAt, r.RecheckAt)
	}
}

// TestDecideStaleTerm: a superseded leader gets Place's ErrStaleTerm.
func TestDecideStaleTerm(t *testing.T) {
	prev := &Placement{Term: 4, Seq: 1, Commit: oldCommit, Assignments: map[string]string{}}
	_, err := Decide(PolicyInput{Candidate: state(deploy("web", 1)), Commit: oldCommit, Nodes: []Node{mkNode("n1")}, Previous: prev, Term: 3, Now: now})
	if !errors.Is(err, ErrStaleTerm) {
		t.Fatalf("Decide for an older term: %v, want ErrStaleTerm", err)
	}
}

// TestPodCount counts what a desired state gives the cluster.
func TestPodCount(t *testing.T) {
	nodes := []Node{mkNode("n1", labels("role", "edge")), mkNode("n2", labels("role", "edge")), mkNode("n3")}
	tests := []struct {
		name    string
		desired *specs.DesiredState
		want    int
	}{
		{"nil", nil, 0},
		{"claims only", state(pvc("data")), 0},
		{"a Job is not run yet", state(job("once")), 0},
		{"replicas, placeable or not", state(deploy("web", 3, selector("role", "gpu")), bare("solo")), 4},
		{"zero replicas", state(deploy("web", 0)), 0},
		{"a DaemonSet on the nodes it matches", state(daemonSet("agent", selector("role", "edge"))), 2},
		{"a DaemonSet on every node", state(daemonSet("agent")), 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := PodCount(tc.desired, nodes); got != tc.want {
				t.Errorf("PodCount = %d, want %d", got, tc.want)
			}
		})
	}
}
