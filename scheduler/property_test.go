package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// propertySeeds is how many generated clusters each property sees.
const propertySeeds = 300

// TestPlaceProperties places generated clusters, first on all-alive nodes,
// then again after nodes died, left, or changed state (with and without a
// change of replica counts), and checks every invariant each time.
func TestPlaceProperties(t *testing.T) {
	for seed := range uint64(propertySeeds) {
		rng := rand.New(rand.NewPCG(seed, 1))
		d, nodes := genCluster(rng, propertyConfig)
		o := opts()
		first := checkedPlace(t, seed, "first", d, nodes, nil, o)
		later := perturb(rng, nodes)
		second := checkedPlace(t, seed, "perturbed", d, later, &first, o)
		checkSurvivorsStay(t, seed, d, later, &first, &second, o)
		scaled := rescale(rng, d)
		checkedPlace(t, seed, "rescaled", scaled, later, &second, o)
		if t.Failed() {
			return
		}
	}
}

// checkedPlace places, checks the invariants, stickiness, determinism and
// agreement with the naive scan, and returns the placement.
func checkedPlace(t *testing.T, seed uint64, step string, d *specs.DesiredState, nodes []Node, prev *Placement, o Options) Placement {
	t.Helper()
	ctx := fmt.Sprintf("seed %d, %s", seed, step)
	out, rep, err := Place(d, nodes, prev, o)
	if err != nil {
		t.Fatalf("%s: %v", ctx, err)
	}
	checkInvariants(t, ctx, d, nodes, prev, out, rep, o)

	again, rep2, err := Place(d, nodes, &out, o)
	if err != nil || !again.Equal(&out) || again.Seq != out.Seq || len(Diff(&out, &again)) > 0 {
		t.Errorf("%s: placing again is not a no-op: %v %v", ctx, err, Diff(&out, &again))
	}
	if !reflect.DeepEqual(rep2.Unplaceable, rep.Unplaceable) {
		t.Errorf("%s: placing again changed the report:\n%v\n%v", ctx, rep.Unplaceable, rep2.Unplaceable)
	}

	shuffled := append([]Node(nil), nodes...)
	rand.New(rand.NewPCG(seed, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	out3, rep3, _ := Place(d, shuffled, prev, o)
	if !reflect.DeepEqual(out3, out) || !reflect.DeepEqual(rep3, rep) {
		t.Errorf("%s: node order changed the result", ctx)
	}

	naive, repN, _ := place(d, nodes, prev, o, pickNaive)
	if !reflect.DeepEqual(naive, out) || !reflect.DeepEqual(repN, rep) {
		t.Errorf("%s: the naive scan disagrees: %v", ctx, Diff(&naive, &out))
	}
	return out
}

// checkInvariants checks one placement against its input.
func checkInvariants(t *testing.T, ctx string, d *specs.DesiredState, nodes []Node, prev *Placement, out Placement, rep Report, o Options) {
	t.Helper()
	byName := map[string]*Node{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	unplaced := map[string]string{}
	for _, u := range rep.Unplaceable {
		if u.Reason == "" {
			t.Errorf("%s: %s unplaceable without a reason", ctx, u.Replica)
		}
		if _, dup := unplaced[u.Replica]; dup {
			t.Errorf("%s: %s reported twice", ctx, u.Replica)
		}
		unplaced[u.Replica] = u.Reason
	}
	type usage struct {
		cpu, mem int64
		ports    map[string]bool
	}
	used := map[string]*usage{}
	seen := 0
	for _, obj := range d.Objects {
		spec, ids := expected(obj)
		for _, id := range ids {
			seen++
			node, assigned := out.Assignments[id]
			_, isUnplaced := unplaced[id]
			if assigned == isUnplaced {
				t.Errorf("%s: %s assigned %v, unplaceable %v: want exactly one", ctx, id, assigned, isUnplaced)
				continue
			}
			if !assigned {
				continue
			}
			n := byName[node]
			if n == nil {
				t.Errorf("%s: %s on unknown node %s", ctx, id, node)
				continue
			}
			if !selectorMatches(spec.NodeSelector, n.selectorLabels()) {
				t.Errorf("%s: %s on %s, whose labels %v do not match %v", ctx, id, node, n.Labels, spec.NodeSelector)
			}
			kept := prev != nil && prev.Assignments[id] == node
			// A replica bound to a claim on its node waits for it
			// however long it is dead.
			pinned := false
			for _, v := range spec.Volumes {
				if v.PersistentVolumeClaim != nil && out.Volumes["default/"+v.PersistentVolumeClaim.ClaimName] == node {
					pinned = true
				}
			}
			switch {
			case n.State == NodeLeft:
				t.Errorf("%s: %s on %s, which left", ctx, id, node)
			case n.State == NodeDead && (!kept || (!pinned && !o.Now.Before(n.DownSince.Add(grace(o))))):
				t.Errorf("%s: %s on dead node %s (kept %v)", ctx, id, node, kept)
			case !kept && (n.State != NodeAlive || n.Ineligible):
				t.Errorf("%s: new replica %s on %s node %s (ineligible %v)", ctx, id, n.State, node, n.Ineligible)
			}
			u := used[node]
			if u == nil {
				u = &usage{ports: map[string]bool{}}
				used[node] = u
			}
			cpu, mem := podRequests(spec)
			u.cpu += cpu
			u.mem += mem
			for _, c := range spec.Containers {
				for _, p := range c.Ports {
					if p.HostPort != 0 {
						k := fmt.Sprintf("%d/%s", p.HostPort, p.Protocol)
						if u.ports[k] {
							t.Errorf("%s: host port %s twice on %s", ctx, k, node)
						}
						u.ports[k] = true
					}
				}
			}
			for _, v := range spec.Volumes {
				if v.PersistentVolumeClaim == nil {
					continue
				}
				c := "default/" + v.PersistentVolumeClaim.ClaimName
				if out.Volumes[c] != node {
					t.Errorf("%s: %s uses claim %s bound to %q but runs on %s", ctx, id, c, out.Volumes[c], node)
				}
			}
		}
	}
	if seen != len(out.Assignments)+len(unplaced) {
		t.Errorf("%s: %d desired replicas, %d assigned + %d unplaceable", ctx, seen, len(out.Assignments), len(unplaced))
	}
	for name, u := range used {
		c := byName[name].Capacity
		if (c.CPUMilli > 0 && u.cpu > c.CPUMilli) || (c.MemoryBytes > 0 && u.mem > c.MemoryBytes) {
			t.Errorf("%s: node %s over capacity: %dm/%dm cpu, %d/%d memory", ctx, name, u.cpu, c.CPUMilli, u.mem, c.MemoryBytes)
		}
	}
	if prev != nil {
		for c, node := range prev.Volumes {
			if _, member := byName[node]; member && out.Volumes[c] != node {
				t.Errorf("%s: claim %s moved from %s to %s", ctx, c, node, out.Volumes[c])
			}
		}
	}
}

// grace is the grace period o means.
func grace(o Options) time.Duration {
	if o.RescheduleAfter == 0 {
		return DefaultRescheduleAfter
	}
	return o.RescheduleAfter
}

// checkSurvivorsStay checks that, with the same desired state, every
// replica whose node still holds replicas stays there, and that no replica
// stays on a node that left, is gone, or is dead past the grace period
// (unless bound to a claim there: it waits for the node).
func checkSurvivorsStay(t *testing.T, seed uint64, d *specs.DesiredState, nodes []Node, prev, out *Placement, o Options) {
	t.Helper()
	byName := map[string]*Node{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	for id, node := range prev.Assignments {
		n := byName[node]
		pinned := false
		for c, at := range out.Volumes {
			if at == node && usesClaim(d, id, c) {
				pinned = true
			}
		}
		holds := n != nil && (n.State == NodeAlive || n.State == NodeSuspect ||
			(n.State == NodeDead && (pinned || o.Now.Before(n.DownSince.Add(grace(o))))))
		if stays := out.Assignments[id] == node; stays != holds {
			t.Errorf("seed %d: %s was on %s (%v), now on %q; want staying %v", seed, id, node, n, out.Assignments[id], holds)
		}
	}
}

// usesClaim reports whether replica id's pod uses claim c.
func usesClaim(d *specs.DesiredState, id, c string) bool {
	for _, obj := range d.Objects {
		spec, ids := expected(obj)
		for _, x := range ids {
			if x != id {
				continue
			}
			for _, v := range spec.Volumes {
				if v.PersistentVolumeClaim != nil && "default/"+v.PersistentVolumeClaim.ClaimName == c {
					return true
				}
			}
		}
	}
	return false
}

// expected returns a workload object's pod spec and the replica names the
// reconciler gives its pods, computed independently of Place.
func expected(obj *specs.Object) (*corev1.PodSpec, []string) {
	switch o := obj.Obj.(type) {
	case *appsv1.Deployment:
		var ids []string
		for i := range int(*o.Spec.Replicas) {
			ids = append(ids, fmt.Sprintf("%s/%s-%d", obj.Namespace, obj.Name, i))
		}
		return &o.Spec.Template.Spec, ids
	case *corev1.Pod:
		return &o.Spec, []string{obj.Namespace + "/" + obj.Name}
	}
	return nil, nil
}

// rescale changes some Deployments' replica counts.
func rescale(rng *rand.Rand, d *specs.DesiredState) *specs.DesiredState {
	objs := make([]*specs.Object, len(d.Objects))
	for i, obj := range d.Objects {
		objs[i] = obj
		if dep, ok := obj.Obj.(*appsv1.Deployment); ok && rng.IntN(3) == 0 {
			c := *dep
			n := int32(rng.IntN(15))
			c.Spec.Replicas = &n
			cp := *obj
			cp.Obj = &c
			objs[i] = &cp
		}
	}
	return state(objs...)
}
