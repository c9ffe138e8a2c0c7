package scheduler

import (
	"fmt"
	"reflect"
	"testing"
)

func TestEncodeRoundTrip(t *testing.T) {
	p := Placement{Term: 3, Seq: 7, Commit: "abc", Assignments: map[string]string{}, Volumes: map[string]string{"default/data": "n2"}}
	for i := range 10000 {
		p.Assignments[fmt.Sprintf("default/web-%d", i)] = fmt.Sprintf("node-%03d", i%500)
	}
	r := Report{
		Unplaceable: []Unplaceable{{Replica: "default/db-0", Reason: "volume claim default/data is on node n2, which is dead"}},
		Waiting:     []Waiting{{Replica: "default/web-1", Node: "n4"}},
	}
	b, err := Encode(p, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 replicas on 500 nodes encode to %d bytes", len(b))
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Placement, p) || got.Term != 3 || got.Seq != 7 {
		t.Errorf("placement did not round-trip")
	}
	if want := []string{"default/db-0: volume claim default/data is on node n2, which is dead"}; !reflect.DeepEqual(got.Unplaceable, want) {
		t.Errorf("unplaceable %q, want %q", got.Unplaceable, want)
	}
	if want := []string{"default/web-1 on n4"}; !reflect.DeepEqual(got.Waiting, want) {
		t.Errorf("waiting %q, want %q", got.Waiting, want)
	}
	if _, err := Decode([]byte("not gzip")); err == nil {
		t.Error("Decode of garbage succeeded")
	}
}
