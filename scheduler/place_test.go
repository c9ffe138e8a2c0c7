package scheduler

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/specs"
)

// TestPlaceRules checks each placement rule on a small cluster.
func TestPlaceRules(t *testing.T) {
	three := []Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}
	tests := []struct {
		name    string
		desired *specs.DesiredState
		nodes   []Node
		prev    map[string]string
		prevVol map[string]string
		now     time.Time
		want    map[string]string
		// unplaceable are "replica: reason" lines.
		unplaceable []string
		waiting     []string // "replica@node"
		volumes     map[string]string
		skipped     []string
	}{
		{
			name:    "spread evenly, ties by name",
			desired: state(deploy("web", 4)),
			nodes:   three,
			want:    assignments("default/web-0", "n1", "default/web-1", "n2", "default/web-2", "n3", "default/web-3", "n1"),
		},
		{
			name:    "spread: fewest of the same workload before least loaded",
			desired: state(deploy("a", 2), deploy("b", 2)),
			nodes:   three,
			// a-0 n1, a-1 n2; b-0 goes to n3 (least loaded), b-1 to n1
			// (no b there, one replica, first by name among n1, n2).
			want: assignments("default/a-0", "n1", "default/a-1", "n2", "default/b-0", "n3", "default/b-1", "n1"),
		},
		{
			name:    "least utilised before fewest replicas",
			desired: state(deploy("big", 1, requests("", "3Gi")), deploy("small", 1, requests("", "1Gi")), deploy("tiny", 1, requests("", "1Gi"))),
			nodes:   []Node{mkNode("n1", capacity(0, "4Gi")), mkNode("n2", capacity(0, "16Gi"))},
			// big-0 takes n1 (a tie, by name); n1 is then 75% used, n2 6%.
			want: assignments("default/big-0", "n1", "default/small-0", "n2", "default/tiny-0", "n2"),
		},
		{
			name:    "sticky: a running replica stays where it is",
			desired: state(deploy("web", 3)),
			nodes:   three,
			prev:    assignments("default/web-0", "n3", "default/web-1", "n3"),
			want:    assignments("default/web-0", "n3", "default/web-1", "n3", "default/web-2", "n1"),
		},
		{
			name:    "sticky replica moves when its nodeSelector stops matching",
			desired: state(deploy("web", 1, selector("disk", "ssd"))),
			nodes:   []Node{mkNode("n1", labels("disk", "ssd")), mkNode("n2", labels("disk", "hdd"))},
			prev:    assignments("default/web-0", "n2"),
			want:    assignments("default/web-0", "n1"),
		},
		{
			name:    "scale down removes the highest ordinals",
			desired: state(deploy("web", 2)),
			nodes:   three,
			prev:    assignments("default/web-0", "n3", "default/web-1", "n2", "default/web-2", "n1", "default/web-3", "n1"),
			want:    assignments("default/web-0", "n3", "default/web-1", "n2"),
		},
		{
			name:    "nodeSelector, hostname label implicit",
			desired: state(deploy("db", 2, selector("disk", "ssd")), bare("probe", selector(HostnameLabel, "n3"))),
			nodes:   []Node{mkNode("n1", labels("disk", "ssd")), mkNode("n2"), mkNode("n3", labels("disk", "ssd"))},
			want:    assignments("default/db-0", "n1", "default/db-1", "n3", "default/probe", "n3"),
		},
		{
			name:        "nodeSelector matching no node",
			desired:     state(deploy("gpu", 1, selector("gpu", "yes"))),
			nodes:       three,
			want:        map[string]string{},
			unplaceable: []string{"default/gpu-0: nodeSelector {gpu=yes} matched 0 of 3 nodes"},
		},
		{
			name:    "memory exhausted",
			desired: state(deploy("web", 5, requests("100m", "1Gi"))),
			nodes:   []Node{mkNode("n1", capacity(4000, "2Gi")), mkNode("n2", capacity(4000, "2Gi")), mkNode("n3", capacity(4000, ""))},
			// n3 has no memory limit: it takes what n1 and n2 cannot.
			want: assignments("default/web-0", "n1", "default/web-1", "n2", "default/web-2", "n3", "default/web-3", "n3", "default/web-4", "n1"),
		},
		{
			name:    "Dimension memory exhausted on 2 nodes",
			desired: state(deploy("web", 5, requests("100m", "1Gi"))),
			nodes:   []Node{mkNode("n1", capacity(4000, "2Gi")), mkNode("n2", capacity(4000, "2Gi"))},
			want:    assignments("default/web-0", "n1", "default/web-1", "n2", "default/web-2", "n1", "default/web-3", "n2"),
			unplaceable: []string{
				"default/web-4: Dimension memory exhausted on 2 nodes",
			},
		},
		{
			name:        "cpu exhausted, init container counted",
			desired:     state(deploy("web", 1, requests("100m", ""), func(s *podSpecT) { s.InitContainers = []containerT{initWith("3", "")} })),
			nodes:       []Node{mkNode("n1", capacity(2000, "")), mkNode("n2", capacity(1000, ""))},
			want:        map[string]string{},
			unplaceable: []string{"default/web-0: Dimension cpu exhausted on 2 nodes"},
		},
		{
			name:        "host ports: one replica a node",
			desired:     state(deploy("lb", 3, hostPort(80))),
			nodes:       []Node{mkNode("n1"), mkNode("n2")},
			want:        assignments("default/lb-0", "n1", "default/lb-1", "n2"),
			unplaceable: []string{"default/lb-2: Dimension ports exhausted on 2 nodes (host port 80/TCP in use)"},
		},
		{
			name:    "claim held by a node pins every replica there",
			desired: state(pvc("data"), deploy("db", 2, claim("data"))),
			nodes:   []Node{mkNode("n1"), mkNode("n2", volumes("default/data")), mkNode("n3")},
			want:    assignments("default/db-0", "n2", "default/db-1", "n2"),
			volumes: map[string]string{"default/data": "n2"},
		},
		{
			name:    "unbound claim binds where its first replica goes",
			desired: state(deploy("a", 1), pvc("data"), deploy("db", 2, claim("data"))),
			nodes:   three,
			want:    assignments("default/a-0", "n1", "default/db-0", "n2", "default/db-1", "n2"),
			volumes: map[string]string{"default/data": "n2"},
		},
		{
			name:    "workloads sharing an unbound claim share its node",
			desired: state(pvc("shared"), deploy("reader", 1, claim("shared")), deploy("writer", 1, claim("shared"))),
			nodes:   three,
			want:    assignments("default/reader-0", "n1", "default/writer-0", "n1"),
			volumes: map[string]string{"default/shared": "n1"},
		},
		{
			name:    "previous binding wins over a stale copy elsewhere",
			desired: state(pvc("data"), deploy("db", 1, claim("data"))),
			nodes:   []Node{mkNode("n1", volumes("default/data")), mkNode("n2")},
			prevVol: map[string]string{"default/data": "n2"},
			want:    assignments("default/db-0", "n2"),
			volumes: map[string]string{"default/data": "n2"},
		},
		{
			name:    "claim on a dead node: the replica it ran waits for it, however long",
			desired: state(pvc("data"), deploy("db", 1, claim("data"))),
			nodes:   []Node{mkNode("n1"), mkNode("n3", dead(time.Hour), volumes("default/data"))},
			prev:    assignments("default/db-0", "n3"),
			want:    assignments("default/db-0", "n3"),
			waiting: []string{"default/db-0@n3"},
			volumes: map[string]string{"default/data": "n3"},
		},
		{
			name:    "claim on a dead node within its grace period: waits the same",
			desired: state(pvc("data"), deploy("db", 1, claim("data"))),
			nodes:   []Node{mkNode("n1"), mkNode("n3", dead(time.Second), volumes("default/data"))},
			prev:    assignments("default/db-0", "n3"),
			want:    assignments("default/db-0", "n3"),
			waiting: []string{"default/db-0@n3"},
			volumes: map[string]string{"default/data": "n3"},
		},
		{
			name:        "claim on a dead node: a replica it did not run is not placed",
			desired:     state(pvc("data"), deploy("db", 2, claim("data"))),
			nodes:       []Node{mkNode("n1"), mkNode("n3", dead(time.Hour), volumes("default/data"))},
			prev:        assignments("default/db-0", "n3"),
			want:        assignments("default/db-0", "n3"),
			waiting:     []string{"default/db-0@n3"},
			unplaceable: []string{"default/db-1: volume claim default/data is on node n3, which is dead"},
			volumes:     map[string]string{"default/data": "n3"},
		},
		{
			name:    "StatefulSet claim per ordinal on a dead node: that ordinal waits",
			desired: loadYAML(t, statefulYAML(true)),
			nodes:   []Node{mkNode("n1"), mkNode("n2", dead(time.Hour)), mkNode("n3")},
			prev:    assignments("default/db-0", "n1", "default/db-1", "n2", "default/db-2", "n3"),
			prevVol: map[string]string{"default/data-db-0": "n1", "default/data-db-1": "n2", "default/data-db-2": "n3"},
			want:    assignments("default/db-0", "n1", "default/db-1", "n2", "default/db-2", "n3"),
			waiting: []string{"default/db-1@n2"},
			volumes: map[string]string{"default/data-db-0": "n1", "default/data-db-1": "n2", "default/data-db-2": "n3"},
		},
		{
			name:        "claim on a node that left: unplaced, reported",
			desired:     state(pvc("data"), deploy("db", 1, claim("data"))),
			nodes:       []Node{mkNode("n1"), mkNode("n3", withState(NodeLeft), volumes("default/data"))},
			prev:        assignments("default/db-0", "n3"),
			want:        map[string]string{},
			unplaceable: []string{"default/db-0: volume claim default/data is on node n3, which has left the cluster"},
			volumes:     map[string]string{"default/data": "n3"},
		},
		{
			name:        "claim on a node gone from the list",
			desired:     state(pvc("data"), deploy("db", 1, claim("data"))),
			nodes:       []Node{mkNode("n1")},
			prevVol:     map[string]string{"default/data": "n9"},
			want:        map[string]string{},
			unplaceable: []string{"default/db-0: volume claim default/data is on node n9, which is not a member of the cluster"},
			volumes:     map[string]string{"default/data": "n9"},
		},
		{
			name:        "claims on different nodes",
			desired:     state(pvc("a"), pvc("b"), deploy("db", 1, claim("a"), claim("b"))),
			nodes:       []Node{mkNode("n1", volumes("default/a")), mkNode("n2", volumes("default/b"))},
			want:        map[string]string{},
			unplaceable: []string{"default/db-0: volume claims default/a (on n1), default/b (on n2) are on different nodes"},
			volumes:     map[string]string{"default/a": "n1", "default/b": "n2"},
		},
		{
			name:        "pinned node full",
			desired:     state(pvc("data"), deploy("db", 2, claim("data"), requests("", "1Gi"))),
			nodes:       []Node{mkNode("n1", capacity(0, "1Gi"), volumes("default/data")), mkNode("n2")},
			want:        assignments("default/db-0", "n1"),
			unplaceable: []string{"default/db-1: volume claim default/data is on node n1, where Dimension memory is exhausted"},
			volumes:     map[string]string{"default/data": "n1"},
		},
		{
			name:    "dead node keeps its replicas during the grace period",
			desired: state(deploy("web", 2)),
			nodes:   []Node{mkNode("n1"), mkNode("n2", dead(2*time.Second))},
			prev:    assignments("default/web-0", "n1", "default/web-1", "n2"),
			want:    assignments("default/web-0", "n1", "default/web-1", "n2"),
			waiting: []string{"default/web-1@n2"},
		},
		{
			name:    "dead node's replicas move after the grace period",
			desired: state(deploy("web", 2)),
			nodes:   []Node{mkNode("n1"), mkNode("n2", dead(DefaultRescheduleAfter)), mkNode("n3")},
			prev:    assignments("default/web-0", "n1", "default/web-1", "n2"),
			want:    assignments("default/web-0", "n1", "default/web-1", "n3"),
		},
		{
			name:    "a node that left hands over at once",
			desired: state(deploy("web", 2)),
			nodes:   []Node{mkNode("n1"), mkNode("n2", withState(NodeLeft)), mkNode("n3")},
			prev:    assignments("default/web-0", "n1", "default/web-1", "n2"),
			want:    assignments("default/web-0", "n1", "default/web-1", "n3"),
		},
		{
			name:    "a node missing from the list counts as gone",
			desired: state(deploy("web", 2)),
			nodes:   []Node{mkNode("n1"), mkNode("n3")},
			prev:    assignments("default/web-0", "n1", "default/web-1", "n2"),
			want:    assignments("default/web-0", "n1", "default/web-1", "n3"),
		},
		{
			name:    "suspect and ineligible nodes keep replicas, take none",
			desired: state(deploy("web", 4)),
			nodes:   []Node{mkNode("n1"), mkNode("n2", withState(NodeSuspect)), mkNode("n3", ineligible)},
			prev:    assignments("default/web-0", "n2", "default/web-1", "n3"),
			want:    assignments("default/web-0", "n2", "default/web-1", "n3", "default/web-2", "n1", "default/web-3", "n1"),
		},
		{
			name:        "no nodes",
			desired:     state(deploy("web", 1)),
			nodes:       nil,
			want:        map[string]string{},
			unplaceable: []string{"default/web-0: no nodes in the cluster"},
		},
		{
			name:        "down and ineligible nodes counted",
			desired:     state(deploy("web", 1)),
			nodes:       []Node{mkNode("n1", dead(time.Minute)), mkNode("n2", withState(NodeLeft)), mkNode("n3", ineligible)},
			want:        map[string]string{},
			unplaceable: []string{"default/web-0: 2 nodes dead or left; 1 node ineligible"},
		},
		{
			name:    "DaemonSets and Jobs are not placed (a Job's pods are, as bare pods), name clash skipped",
			desired: state(daemonSet("agent"), job("backup"), deploy("web", 2), bare("web-1")),
			nodes:   three,
			want:    assignments("default/web-0", "n1", "default/web-1", "n2"),
			skipped: []string{
				"Pod/default/web-1 default/web-1: pod name default/web-1 is already used by Deployment/default/web; not placed",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev *Placement
			if tt.prev != nil || tt.prevVol != nil {
				prev = &Placement{Term: 1, Seq: 1, Commit: "c0", Assignments: tt.prev, Volumes: tt.prevVol}
			}
			o := opts()
			if !tt.now.IsZero() {
				o.Now = tt.now
			}
			got, rep := mustPlace(t, tt.desired, tt.nodes, prev, o)
			if !maps.Equal(got.Assignments, tt.want) {
				t.Errorf("assignments:\n got %v\nwant %v", got.Assignments, tt.want)
			}
			var un []string
			for _, u := range rep.Unplaceable {
				un = append(un, u.String())
			}
			if !slices.Equal(un, tt.unplaceable) {
				t.Errorf("unplaceable:\n got %q\nwant %q", un, tt.unplaceable)
			}
			var wait []string
			for _, w := range rep.Waiting {
				wait = append(wait, w.Replica+"@"+w.Node)
			}
			if !slices.Equal(wait, tt.waiting) {
				t.Errorf("waiting: got %q, want %q", wait, tt.waiting)
			}
			if !maps.Equal(got.Volumes, tt.volumes) {
				t.Errorf("volumes: got %v, want %v", got.Volumes, tt.volumes)
			}
			var sk []string
			for _, s := range rep.Skipped {
				sk = append(sk, s.String())
			}
			if !slices.Equal(sk, tt.skipped) {
				t.Errorf("skipped:\n got %q\nwant %q", sk, tt.skipped)
			}
		})
	}
}

// TestSeedExample places the seed example, loaded through specs.
func TestSeedExample(t *testing.T) {
	d := loadYAML(t, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
spec:
  selector:
    matchLabels:
      app: nginx
  replicas: 2
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.7.9
        ports:
        - containerPort: 80
        resources:
          limits:
            memory: 512Mi
`)
	nodes := []Node{mkNode("b", capacity(2000, "1Gi")), mkNode("a", capacity(2000, "1Gi")), mkNode("c", capacity(2000, "256Mi"))}
	got, rep := mustPlace(t, d, nodes, nil, opts())
	want := assignments("default/nginx-deployment-0", "a", "default/nginx-deployment-1", "b")
	if !maps.Equal(got.Assignments, want) || len(rep.Unplaceable) > 0 {
		t.Errorf("got %v %v, want %v", got.Assignments, rep.Unplaceable, want)
	}
}

// TestGracePeriod checks the boundary of RescheduleAfter and RecheckAt.
func TestGracePeriod(t *testing.T) {
	d := state(deploy("web", 2))
	down := now.Add(-time.Minute)
	nodes := []Node{mkNode("n1"), {Name: "n2", State: NodeDead, DownSince: down}}
	prev := &Placement{Term: 1, Seq: 4, Assignments: assignments("default/web-0", "n1", "default/web-1", "n2")}
	for _, tt := range []struct {
		after time.Duration
		stays bool
	}{
		{time.Minute + time.Nanosecond, true},
		{time.Minute, false},
		{time.Second, false},
	} {
		o := Options{Term: 1, Now: now, RescheduleAfter: tt.after}
		got, rep := mustPlace(t, d, nodes, prev, o)
		stays := got.Assignments["default/web-1"] == "n2"
		if stays != tt.stays {
			t.Errorf("after %s: web-1 on %s, want staying %v", tt.after, got.Assignments["default/web-1"], tt.stays)
		}
		wantRecheck := time.Time{}
		if tt.stays {
			wantRecheck = down.Add(tt.after)
		}
		if !rep.RecheckAt.Equal(wantRecheck) {
			t.Errorf("after %s: RecheckAt %v, want %v", tt.after, rep.RecheckAt, wantRecheck)
		}
	}
}

// TestCapacityShrinks checks that a node that can no longer hold its
// replicas keeps the first ones and the rest move.
func TestCapacityShrinks(t *testing.T) {
	d := state(deploy("web", 3, requests("", "1Gi")))
	prev := &Placement{Term: 1, Seq: 1, Assignments: assignments("default/web-0", "n1", "default/web-1", "n1", "default/web-2", "n1")}
	got, _ := mustPlace(t, d, []Node{mkNode("n1", capacity(0, "2Gi")), mkNode("n2")}, prev, opts())
	want := assignments("default/web-0", "n1", "default/web-1", "n1", "default/web-2", "n2")
	if !maps.Equal(got.Assignments, want) {
		t.Errorf("got %v, want %v", got.Assignments, want)
	}
}

// TestTermAndSeq checks fencing and sequence numbers.
func TestTermAndSeq(t *testing.T) {
	d := state(deploy("web", 2))
	nodes := []Node{mkNode("n1"), mkNode("n2")}
	first, _ := mustPlace(t, d, nodes, nil, Options{Term: 3, Commit: "c1", Now: now})
	if first.Term != 3 || first.Seq != 1 || first.Commit != "c1" {
		t.Fatalf("first placement %d/%d %s, want 3/1 c1", first.Term, first.Seq, first.Commit)
	}
	same, _ := mustPlace(t, d, nodes, &first, Options{Term: 3, Commit: "c1", Now: now})
	if same.Seq != 1 || !same.Equal(&first) {
		t.Errorf("unchanged input: seq %d, equal %v; want seq 1, equal", same.Seq, same.Equal(&first))
	}
	commit, _ := mustPlace(t, d, nodes, &first, Options{Term: 3, Commit: "c2", Now: now})
	if commit.Seq != 2 || !commit.Newer(&first) {
		t.Errorf("new commit: seq %d, want 2", commit.Seq)
	}
	preview, _ := mustPlace(t, state(deploy("web", 3)), nodes, &commit, Options{Commit: "c2", Now: now})
	if preview.Term != 3 || preview.Seq != 3 {
		t.Errorf("term 0: got %d/%d, want 3/3", preview.Term, preview.Seq)
	}
	next, _ := mustPlace(t, d, nodes, &commit, Options{Term: 4, Commit: "c2", Now: now})
	if next.Term != 4 || next.Seq != 1 || !next.Newer(&commit) || commit.Newer(&next) {
		t.Errorf("new term: got %d/%d, want 4/1 and newer", next.Term, next.Seq)
	}
	_, _, err := Place(d, nodes, &next, Options{Term: 3, Now: now})
	if !errors.Is(err, ErrStaleTerm) {
		t.Errorf("stale term: err %v, want ErrStaleTerm", err)
	}
}

// TestPlaceErrors checks invalid input.
func TestPlaceErrors(t *testing.T) {
	d := state(deploy("web", 1))
	for _, tt := range []struct {
		name  string
		nodes []Node
		o     Options
		want  string
	}{
		{"no clock", []Node{mkNode("n1")}, Options{}, "place: options: Now is required"},
		{"negative grace", []Node{mkNode("n1")}, Options{Now: now, RescheduleAfter: -1}, "RescheduleAfter must be positive"},
		{"nameless node", []Node{mkNode("n1"), {}}, opts(), "place: node 2 of 2 has no name"},
		{"duplicate node", []Node{mkNode("n1"), mkNode("n1")}, opts(), "place: node n1 is listed twice"},
		{"negative capacity", []Node{mkNode("n1", capacity(-1, ""))}, opts(), "negative capacity"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Place(d, tt.nodes, nil, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// TestNilDesired places nothing.
func TestNilDesired(t *testing.T) {
	got, rep := mustPlace(t, nil, []Node{mkNode("n1")}, nil, opts())
	if len(got.Assignments) != 0 || len(rep.Unplaceable) != 0 {
		t.Errorf("got %v %v, want nothing", got.Assignments, rep.Unplaceable)
	}
}
