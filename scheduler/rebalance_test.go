package scheduler

import (
	"maps"
	"reflect"
	"testing"
)

// settledAll marks every assignment of p available where it is placed.
func settledAll(p Placement) map[string]bool {
	out := map[string]bool{}
	for id := range p.Assignments {
		out[id] = true
	}
	return out
}

// TestRebalanceReturningNode: a node that comes back empty gets replicas
// back one per workload per placement, each step only once the workload is
// settled, until the spread is even; claims, an unsettled workload and
// Rebalance off move nothing.
func TestRebalanceReturningNode(t *testing.T) {
	d := state(deploy("web", 6), deploy("db", 2, claim("data")), pvc("data"))
	nodes := []Node{mkNode("a"), mkNode("b"), mkNode("c")}
	prev := &Placement{Term: 1, Seq: 3, Commit: "c1", Assignments: assignments(
		"default/web-0", "b", "default/web-1", "c", "default/web-2", "b",
		"default/web-3", "c", "default/web-4", "b", "default/web-5", "c",
		"default/db-0", "b", "default/db-1", "b",
	)}
	nodes[1].Volumes = []string{"default/data"}

	t.Run("off", func(t *testing.T) {
		o := opts()
		o.Settled = settledAll(*prev)
		got, _ := mustPlace(t, d, nodes, prev, o)
		if !maps.Equal(got.Assignments, prev.Assignments) {
			t.Errorf("without Rebalance the placement changed: %v", got.Assignments)
		}
	})
	t.Run("unsettled", func(t *testing.T) {
		o := opts()
		o.Rebalance = true
		o.Settled = settledAll(*prev)
		delete(o.Settled, "default/web-3") // still starting: a rollout or an earlier move
		got, _ := mustPlace(t, d, nodes, prev, o)
		if !maps.Equal(got.Assignments, prev.Assignments) {
			t.Errorf("an unsettled workload was rebalanced: %v", got.Assignments)
		}
	})
	t.Run("gradually to even", func(t *testing.T) {
		cur := prev
		var steps []map[string]int
		for range 5 {
			o := opts()
			o.Rebalance = true
			o.Settled = settledAll(*cur)
			got, _ := mustPlace(t, d, nodes, cur, o)
			moved := 0
			for id, n := range got.Assignments {
				if cur.Assignments[id] != n {
					moved++
				}
			}
			if moved > 1 {
				t.Fatalf("one placement moved %d replicas: %v → %v", moved, cur.Assignments, got.Assignments)
			}
			if got.Assignments["default/db-0"] != "b" || got.Assignments["default/db-1"] != "b" {
				t.Fatalf("a replica bound to its claim moved: %v", got.Assignments)
			}
			steps = append(steps, perNode(Placement{Assignments: webOnly(got.Assignments)}))
			cur = &got
		}
		want := []map[string]int{
			{"a": 1, "b": 2, "c": 3}, // b and c hold 3: the first in name order gives one up
			{"a": 2, "b": 2, "c": 2},
			{"a": 2, "b": 2, "c": 2},
			{"a": 2, "b": 2, "c": 2},
			{"a": 2, "b": 2, "c": 2},
		}
		if !reflect.DeepEqual(steps, want) {
			t.Errorf("web per node after each placement %v, want %v", steps, want)
		}
	})
}

// webOnly keeps the assignments of web's replicas.
func webOnly(a map[string]string) map[string]string {
	out := map[string]string{}
	for id, n := range a {
		if len(id) > 12 && id[:12] == "default/web-" {
			out[id] = n
		}
	}
	return out
}
