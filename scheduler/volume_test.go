package scheduler

import (
	"maps"
	"slices"
	"testing"
)

// TestVolumeBindings checks where claims bind and the warnings.
func TestVolumeBindings(t *testing.T) {
	d := state(pvc("data"), deploy("db", 1, claim("data")))
	for _, tt := range []struct {
		name     string
		nodes    []Node
		prev     map[string]string
		want     string // node of default/db-0 and of the claim
		warnings []string
	}{
		{
			name:     "data on two nodes: first by name, warned",
			nodes:    []Node{mkNode("n2", volumes("default/data")), mkNode("n1", volumes("default/data")), mkNode("n3")},
			want:     "n1",
			warnings: []string{"volume claim default/data: data found on nodes n1, n2; using n1"},
		},
		{
			name:     "bound node gone for good, another holds the data",
			nodes:    []Node{mkNode("n1"), mkNode("n2", volumes("default/data"))},
			prev:     map[string]string{"default/data": "n9"},
			want:     "n2",
			warnings: []string{"volume claim default/data: bound to node n9, which is not a member any more; node n2 holds its data and takes it"},
		},
		{
			name:  "bound node alive but not reporting yet",
			nodes: []Node{mkNode("n1"), mkNode("n2")},
			prev:  map[string]string{"default/data": "n2"},
			want:  "n2",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var prev *Placement
			if tt.prev != nil {
				prev = &Placement{Term: 1, Seq: 1, Volumes: tt.prev}
			}
			got, rep := mustPlace(t, d, tt.nodes, prev, opts())
			if want := assignments("default/db-0", tt.want); !maps.Equal(got.Assignments, want) {
				t.Errorf("assignments %v, want %v", got.Assignments, want)
			}
			if got.Volumes["default/data"] != tt.want {
				t.Errorf("claim on %q, want %s", got.Volumes["default/data"], tt.want)
			}
			if !slices.Equal(rep.Warnings, tt.warnings) {
				t.Errorf("warnings %q, want %q", rep.Warnings, tt.warnings)
			}
		})
	}
}

// TestClaimDroppedWithItsObject checks that removing the claim from the
// desired state releases its binding.
func TestClaimDroppedWithItsObject(t *testing.T) {
	prev := &Placement{Term: 1, Seq: 1, Volumes: map[string]string{"default/data": "n9"}}
	got, _ := mustPlace(t, state(deploy("web", 1)), []Node{mkNode("n1")}, prev, opts())
	if len(got.Volumes) != 0 || got.Seq != 2 {
		t.Errorf("volumes %v seq %d, want none and 2", got.Volumes, got.Seq)
	}
}
