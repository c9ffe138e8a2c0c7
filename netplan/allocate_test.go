package netplan

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

func TestAllocateFencing(t *testing.T) {
	nodes := []Node{alive("a")}
	svcs := []*corev1.Service{service("default/web")}
	first, _, err := Allocate(nil, nodes, svcs, Options{Term: 3, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if first.Term != 3 || first.Seq != 1 || first.Version != StateVersion {
		t.Fatalf("first state: term %d seq %d version %d, want 3 1 %d", first.Term, first.Seq, first.Version, StateVersion)
	}
	same, _, err := Allocate(&first, nodes, svcs, Options{Term: 3, Now: t0.Add(time.Minute)})
	if err != nil || same.Seq != 1 {
		t.Fatalf("nothing changed: seq %d (err %v), want 1", same.Seq, err)
	}
	changed, _, err := Allocate(&first, append(nodes, alive("b")), svcs, Options{Now: t0})
	if err != nil || changed.Term != 3 || changed.Seq != 2 {
		t.Fatalf("a new node, term 0 (keep): term %d seq %d (err %v), want 3 2", changed.Term, changed.Seq, err)
	}
	if !changed.Newer(&first) || first.Newer(&changed) {
		t.Error("Newer: the next seq must supersede")
	}
	next, _, err := Allocate(&changed, nodes, svcs, Options{Term: 4, Now: t0})
	if err != nil || next.Term != 4 || next.Seq != 1 || !next.Newer(&changed) {
		t.Fatalf("a new term: term %d seq %d (err %v), want 4 1", next.Term, next.Seq, err)
	}
	if _, _, err := Allocate(&next, nodes, svcs, Options{Term: 3, Now: t0}); !errors.Is(err, ErrStaleTerm) {
		t.Fatalf("allocating for an older term: %v, want ErrStaleTerm", err)
	}
	var nilState *State
	if !first.Newer(nil) || nilState.Newer(&first) {
		t.Error("Newer with nil")
	}
}

func TestAllocateRejectsBadInput(t *testing.T) {
	tests := []struct {
		name  string
		nodes []Node
		svcs  []*corev1.Service
		opts  Options
		want  string
	}{
		{name: "no clock", opts: Options{}, want: "Now is required"},
		{name: "bad config", opts: Options{Now: t0, Config: Config{ClusterCIDR: pfx("10.96.0.0/12")}}, want: "overlap"},
		{name: "unnamed node", nodes: []Node{{}}, opts: Options{Now: t0}, want: "node 1 of 1 has no name"},
		{name: "node twice", nodes: []Node{alive("a"), dead("a", t0)}, opts: Options{Now: t0}, want: "node a is listed twice"},
		{name: "service twice", svcs: []*corev1.Service{service("default/a"), service("/a")}, opts: Options{Now: t0}, want: "service default/a is listed twice"},
		{name: "unnamed service", svcs: []*corev1.Service{service("default/")}, opts: Options{Now: t0}, want: "service 1 of 1 has no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Allocate(nil, tt.nodes, tt.svcs, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestServicesOf(t *testing.T) {
	d, err := specs.Load(fstest.MapFS{"svc.yaml": {Data: []byte(`apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`)}}, ".", specs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svcs := ServicesOf(d)
	if len(svcs) != 1 || ServiceKey(svcs[0]) != "default/web" || svcs[0].Spec.Ports[0].TargetPort.IntVal != 80 {
		t.Fatalf("ServicesOf = %+v", svcs)
	}
}
