package scheduler

import (
	"runtime"
	"testing"

	"github.com/kelpie-dev/kelpie/specs"
)

// TestPlaceHugeReplicas places a state that skipped validation with
// `replicas: 2147483647`: the workload is skipped with a reason, without
// allocating in proportion to the count (it used to preallocate 2^31
// replicas and take the leader down).
func TestPlaceHugeReplicas(t *testing.T) {
	desired := state(deploy("huge", 2147483647), deploy("web", 2))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, report, err := Place(desired, []Node{mkNode("n1")}, nil, opts())
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Assignments) != 2 {
		t.Errorf("assignments %v, want web's two replicas", p.Assignments)
	}
	want := specs.Key{Kind: specs.KindDeployment, Namespace: "default", Name: "huge"}.String() + ": 2147483647 replicas is more than the limit of 10000; not placed"
	if len(report.Skipped) != 1 || report.Skipped[0].String() != want {
		t.Errorf("skipped %v, want [%s]", report.Skipped, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("Place allocated %d bytes", alloc)
	}
}
