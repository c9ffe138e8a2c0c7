package gossip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// m is shorthand for an alive, eligible member.
func m(name string, term, stepped uint64) ElectionMember {
	return ElectionMember{Name: name, Alive: true, Eligible: true, Term: term, SteppedDownFor: stepped}
}

func TestDecide(t *testing.T) {
	settled := t0.Add(10 * time.Second)
	for _, tc := range []struct {
		name    string
		self    string
		members []ElectionMember
		highest uint64
		now     time.Time
		want    Decision // Reason is not compared
	}{
		{"first eligible claims once settled", "a", []ElectionMember{m("a", 0, 0), m("b", 0, 0)}, 4, settled,
			Decision{Action: Claim, Term: 5, Leader: "a"}},
		{"first eligible waits while the view settles", "a", []ElectionMember{m("a", 0, 0), m("b", 0, 0)}, 4, t0.Add(time.Second),
			Decision{Action: Follow}},
		{"others wait for the candidate", "b", []ElectionMember{m("a", 0, 0), m("b", 0, 0)}, 0, settled,
			Decision{Action: Follow}},
		{"claim above every term in the view", "a", []ElectionMember{m("a", 0, 0), {Name: "b", Alive: true, Term: 0, SteppedDownFor: 9}}, 2, settled,
			Decision{Action: Claim, Term: 10, Leader: "a"}},
		{"not eligible: the next one claims", "b", []ElectionMember{{Name: "a", Alive: true}, m("b", 0, 0)}, 0, settled,
			Decision{Action: Claim, Term: 1, Leader: "b"}},
		{"dead first member: the next one claims", "b", []ElectionMember{{Name: "a", Eligible: true}, m("b", 0, 0)}, 1, settled,
			Decision{Action: Claim, Term: 2, Leader: "b"}},
		{"follow the leader", "c", []ElectionMember{m("a", 0, 0), m("b", 3, 0), m("c", 0, 0)}, 3, settled,
			Decision{Action: Follow, Term: 3, Leader: "b"}},
		{"dead leader's claim is ignored", "c", []ElectionMember{{Name: "b", Eligible: true, Term: 3}, m("c", 0, 0)}, 3, settled,
			Decision{Action: Claim, Term: 4, Leader: "c"}},
		{"leader stays", "a", []ElectionMember{m("a", 2, 0), m("b", 0, 0)}, 2, settled,
			Decision{Action: StayLeader, Term: 2, Leader: "a"}},
		{"leader steps down for a higher term (sticky)", "a", []ElectionMember{m("a", 2, 0), m("b", 3, 0)}, 3, settled,
			Decision{Action: StepDown, Term: 3, Leader: "b"}},
		{"equal terms: the lower name wins", "b", []ElectionMember{m("a", 2, 0), m("b", 2, 0)}, 2, settled,
			Decision{Action: StepDown, Term: 2, Leader: "a"}},
		{"equal terms: the lower name stays", "a", []ElectionMember{m("a", 2, 0), m("b", 2, 0)}, 2, settled,
			Decision{Action: StayLeader, Term: 2, Leader: "a"}},
		{"leader steps down for an earlier eligible member", "b", []ElectionMember{m("a", 0, 0), m("b", 2, 0)}, 2, settled,
			Decision{Action: StepDown, Term: 0}},
		{"leader keeps leading over a sticky earlier member", "b", []ElectionMember{m("a", 0, 2), m("b", 2, 0)}, 2, settled,
			Decision{Action: StayLeader, Term: 2, Leader: "b"}},
		{"sticky: no claim while the holder lives", "a", []ElectionMember{m("a", 0, 2), m("b", 2, 0)}, 2, settled,
			Decision{Action: Follow, Term: 2, Leader: "b"}},
		{"sticky ends when the holder dies", "a", []ElectionMember{m("a", 0, 2), {Name: "b", Eligible: true, Term: 2}}, 2, settled,
			Decision{Action: Claim, Term: 3, Leader: "a"}},
		{"sticky ends when nobody holds that term", "a", []ElectionMember{m("a", 0, 2), m("b", 0, 0)}, 2, settled,
			Decision{Action: Claim, Term: 3, Leader: "a"}},
		{"leader no longer eligible steps down", "a", []ElectionMember{{Name: "a", Alive: true, Term: 2}, m("b", 0, 0)}, 2, settled,
			Decision{Action: StepDown, Term: 0}},
		{"leader below a seen term re-claims above it", "a", []ElectionMember{m("a", 1, 0), m("b", 0, 0)}, 2, settled,
			Decision{Action: Claim, Term: 3, Leader: "a"}},
		{"nobody eligible", "a", []ElectionMember{{Name: "a", Alive: true}, {Name: "b", Alive: true}}, 0, settled,
			Decision{Action: Follow}},
		{"no claim without quorum", "a", []ElectionMember{m("a", 0, 0)}, 0, settled,
			Decision{Action: Follow}},
		{"alone", "a", []ElectionMember{m("a", 0, 0)}, 0, settled,
			Decision{Action: Claim, Term: 1, Leader: "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(ElectionView{Self: tc.self, Members: tc.members, HighestTerm: tc.highest,
				Changed: t0, Now: tc.now, Settle: 5 * time.Second, QuorumLost: tc.name == "no claim without quorum"})
			if got.Reason == "" {
				t.Errorf("empty reason")
			}
			got.Reason = ""
			if got != tc.want {
				t.Fatalf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// simulate runs every alive member's Decide on one shared, settled view
// and applies the decisions together, round after round, until nothing
// changes. It returns the final members and the last decisions.
func simulate(t *testing.T, ms []ElectionMember, highest uint64) ([]ElectionMember, map[string]Decision, int) {
	t.Helper()
	ms = slices.Clone(ms)
	for round := 1; round <= 20; round++ {
		ds := map[string]Decision{}
		for _, x := range ms {
			if x.Alive {
				ds[x.Name] = Decide(ElectionView{Self: x.Name, Members: ms, HighestTerm: highest,
					Changed: t0, Now: t0.Add(time.Minute), Settle: time.Second})
			}
		}
		changed := false
		for i, x := range ms {
			d, ok := ds[x.Name]
			if !ok {
				continue
			}
			switch d.Action {
			case Claim:
				ms[i].Term, ms[i].SteppedDownFor = d.Term, 0
				highest = max(highest, d.Term)
				changed = true
			case StepDown:
				ms[i].Term = 0
				if d.Term > 0 {
					ms[i].SteppedDownFor = d.Term
				}
				changed = true
			}
		}
		if !changed {
			return ms, ds, round
		}
	}
	t.Fatalf("no fixed point after 20 rounds from %+v", ms)
	return nil, nil, 0
}

// TestDecideOneLeaderProperty generates many views, including arbitrary
// leftover claims and step-downs, shares each among all members, and
// checks that iterating the decisions reaches a fixed point with exactly
// one leader that every alive member follows (none when no alive member
// is eligible).
func TestDecideOneLeaderProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	maxRounds := 0
	for i := range 20000 {
		size := 1 + r.IntN(9)
		var ms []ElectionMember
		var highest uint64 = uint64(r.IntN(5))
		for j := range size {
			x := ElectionMember{Name: fmt.Sprintf("n%d", j), Alive: r.IntN(5) > 0, Eligible: r.IntN(4) > 0}
			if r.IntN(3) == 0 {
				x.Term = uint64(r.IntN(6))
			}
			if r.IntN(3) == 0 {
				x.SteppedDownFor = uint64(r.IntN(6))
			}
			highest = max(highest, x.Term)
			ms = append(ms, x)
		}
		r.Shuffle(len(ms), func(a, b int) { ms[a], ms[b] = ms[b], ms[a] })
		final, ds, rounds := simulate(t, ms, highest)
		maxRounds = max(maxRounds, rounds)
		var leaders []string
		eligible := false
		for _, x := range final {
			if x.Alive && x.Term > 0 {
				leaders = append(leaders, x.Name)
			}
			eligible = eligible || (x.Alive && x.Eligible)
		}
		want := 1
		if !eligible {
			want = 0
		}
		if len(leaders) != want {
			t.Fatalf("case %d: %d leaders %v, want %d\nstart %+v\nfinal %+v", i, len(leaders), leaders, want, ms, final)
		}
		for name, d := range ds {
			if want == 1 && d.Leader != leaders[0] {
				t.Fatalf("case %d: %s follows %q, leader is %s\nstart %+v\nfinal %+v", i, name, d.Leader, leaders[0], ms, final)
			}
		}
	}
	t.Logf("fixed point reached within %d rounds", maxRounds)
}

func TestActionString(t *testing.T) {
	var names []string
	for _, a := range []Action{Follow, Claim, StayLeader, StepDown, Action(9)} {
		names = append(names, a.String())
	}
	if got := strings.Join(names, ","); got != "follow,claim,stay leader,step down,action(9)" {
		t.Fatal(got)
	}
}

func BenchmarkDecide500(b *testing.B) {
	var ms []ElectionMember
	for j := range 500 {
		ms = append(ms, m(fmt.Sprintf("node-%03d", j), 0, 0))
	}
	ms[7].Term = 3
	v := ElectionView{Self: "node-250", Members: ms, HighestTerm: 3, Changed: t0, Now: t0.Add(time.Minute), Settle: time.Second}
	for b.Loop() {
		Decide(v)
	}
}
