package netplan

import (
	"errors"
	"fmt"
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

// TestAllocateScale allocates for 500 hosts (in a /15 of /24 slices) and
// 10,000 Services, NodePort one in ten, and checks that all get what they
// need, that allocating again is a no-op, and the size of the state.
func TestAllocateScale(t *testing.T) {
	cfg := Config{ClusterCIDR: pfx("10.244.0.0/15"), ServiceCIDR: pfx("10.96.0.0/16")}
	var nodes []Node
	for i := range 500 {
		nodes = append(nodes, alive(fmt.Sprintf("host-%03d", i)))
	}
	var svcs []*corev1.Service
	for i := range 10000 {
		var opts []svcOpt
		if i%10 == 0 {
			opts = append(opts, nodePort(0))
		}
		svcs = append(svcs, service(fmt.Sprintf("ns-%d/svc-%d", i%50, i), opts...))
	}
	st, rep, err := Allocate(nil, nodes, svcs, Options{Term: 1, Now: t0, Config: cfg})
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("err %v, problems %v", err, rep.Problems[:min(3, len(rep.Problems))])
	}
	if len(st.Slices) != 500 || len(st.Services) != 10000 {
		t.Fatalf("%d slices, %d services", len(st.Slices), len(st.Services))
	}
	again, _, err := Allocate(&st, nodes, svcs, Options{Term: 1, Now: t0.Add(time.Hour), Config: cfg})
	if err != nil || again.Seq != st.Seq {
		t.Fatalf("allocating again: seq %d → %d (err %v)", st.Seq, again.Seq, err)
	}
	b, err := Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("encoded state: %d bytes", len(b))
	if len(b) > 2<<20 {
		t.Errorf("the encoded state takes %d bytes", len(b))
	}
}
