package scheduler

import (
	"testing"
)

// statefulYAML is a StatefulSet of three replicas, each with its own claim
// data-db-ORDINAL; withClaims false leaves the template out.
func statefulYAML(withClaims bool) string {
	s := `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: a, image: b}]}
`
	if withClaims {
		s += `  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`
	}
	return s
}

// TestStatefulSetPlacement: each ordinal follows its own claim to the node
// that holds its data, unclaimed ordinals spread and bind their claims
// where they land, and every ordinal's claim is published.
func TestStatefulSetPlacement(t *testing.T) {
	d := loadYAML(t, statefulYAML(true))
	nodes := []Node{mkNode("n1"), mkNode("n2", volumes("default/data-db-1")), mkNode("n3", volumes("default/data-db-0"))}
	got, rep := mustPlace(t, d, nodes, nil, opts())
	if len(rep.Unplaceable) > 0 {
		t.Fatalf("unplaceable: %+v", rep.Unplaceable)
	}
	if got.Assignments["default/db-0"] != "n3" || got.Assignments["default/db-1"] != "n2" {
		t.Errorf("assignments %v: db-0 must follow data-db-0 to n3, db-1 data-db-1 to n2", got.Assignments)
	}
	for i, c := range []string{"default/data-db-0", "default/data-db-1", "default/data-db-2"} {
		pod := "default/db-" + string(rune('0'+i))
		if got.Volumes[c] == "" || got.Volumes[c] != got.Assignments[pod] {
			t.Errorf("claim %s on %q, pod %s on %q: want them together", c, got.Volumes[c], pod, got.Assignments[pod])
		}
	}
	// Sticky: the next placement, with the data reported where it was
	// bound, keeps every ordinal where it was, even with rebalancing on.
	o := opts()
	o.Rebalance = true
	nodes = append(nodes, mkNode("n4"))
	again, _ := mustPlace(t, d, nodes, &got, o)
	for pod, node := range got.Assignments {
		if again.Assignments[pod] != node {
			t.Errorf("%s moved from %s to %s", pod, node, again.Assignments[pod])
		}
	}
}

// TestStatefulSetNoRebalance: a StatefulSet without claims is spread like a
// Deployment, but never moved to rebalance (a move would run one ordinal
// on two hosts for a while).
func TestStatefulSetNoRebalance(t *testing.T) {
	d := loadYAML(t, statefulYAML(false))
	got, _ := mustPlace(t, d, []Node{mkNode("n1")}, nil, opts())
	if len(got.Assignments) != 3 {
		t.Fatalf("assignments %v", got.Assignments)
	}
	o := opts()
	o.Rebalance = true
	o.Settled = map[string]bool{"default/db-0": true, "default/db-1": true, "default/db-2": true}
	again, _ := mustPlace(t, d, []Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}, &got, o)
	for pod := range got.Assignments {
		if again.Assignments[pod] != "n1" {
			t.Errorf("%s moved to %s to rebalance", pod, again.Assignments[pod])
		}
	}
	// A Deployment in the same spot is rebalanced (the test can fail).
	dep := loadYAML(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: a, image: b}]}
`)
	got, _ = mustPlace(t, dep, []Node{mkNode("n1")}, nil, opts())
	again, _ = mustPlace(t, dep, []Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}, &got, o)
	moved := 0
	for pod := range got.Assignments {
		if again.Assignments[pod] != "n1" {
			moved++
		}
	}
	if moved == 0 {
		t.Error("a Deployment was not rebalanced either: the test proves nothing")
	}
}
