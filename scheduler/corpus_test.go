package scheduler

import (
	"os"
	"testing"

	"github.com/kelpie-dev/kelpie/specs"
)

// TestPlaceCorpus places the repository's shared corpus of valid manifests
// (testdata/manifests/valid at the top level) on three nodes through the
// policy: its 15 replicas (4 Deployments, 6 Pods) are all placed, its two
// Jobs and two CronJobs skipped, and the policy counts 20 pods for the
// cluster: the replicas, the DaemonSet on role=edge on 2 nodes and the
// other on all 3.
func TestPlaceCorpus(t *testing.T) {
	desired, err := specs.Load(os.DirFS("../testdata/manifests/valid"), ".", specs.Options{})
	if err != nil {
		t.Fatalf("load the corpus: %v", err)
	}
	nodes := []Node{mkNode("n1", labels("role", "edge", "disk", "ssd")), mkNode("n2", labels("role", "edge")), mkNode("n3")}
	d, err := Decide(PolicyInput{Candidate: desired, Commit: "c1", Nodes: nodes, Term: 1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != Placed || !d.Changed {
		t.Fatalf("verdict %s, changed %v (%s)", d.Verdict, d.Changed, d.Note)
	}
	if got := len(d.Placement.Assignments); got != 15 || len(d.Report.Unplaceable) != 0 || len(d.Report.Skipped) != 0 {
		t.Errorf("placed %d replicas, want 15 and nothing skipped; report %+v", got, d.Report)
	}
	if got := PodCount(desired, nodes); got != 20 {
		t.Errorf("PodCount = %d, want 20", got)
	}
	if n := d.Placement.Assignments["shop/full"]; n != "n1" {
		t.Errorf("shop/full (nodeSelector disk=ssd) on %q, want n1", n)
	}
}
