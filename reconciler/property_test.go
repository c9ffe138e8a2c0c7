package reconciler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// TestApplyThenPlanIsEmpty is the planner's central property: executing a
// plan against any actual state and planning again yields a plan without
// actions. It also checks the invariants of every plan: one pod-level
// action per pod at most, no container action on a pod being created or
// replaced, claims never deleted, nothing deleted without Prune, and that
// after the apply every desired pod exists with its spec hash.
func TestApplyThenPlanIsEmpty(t *testing.T) {
	const runs = 600
	for seed := range uint64(runs) {
		r := rand.New(rand.NewPCG(seed, 0x6b656c706965))
		desired, actual := genState(r)
		opts := reconciler.PlanOptions{Now: reconciler.Now, Prune: r.IntN(2) == 0, AllowEmpty: true}
		res, err := reconciler.Plan(desired, actual, opts)
		if err != nil {
			t.Fatalf("seed %d: Plan: %v", seed, err)
		}
		checkInvariants(t, seed, res, opts)
		fake := reconcilertest.NewFake(actual)
		rep := reconciler.Execute(context.Background(), fake, res.Actions, reconciler.ExecOptions{})
		if err := rep.Err(); err != nil {
			t.Fatalf("seed %d: execute:\n%s\n%v", seed, reconciler.ActionStrings(res.Actions), err)
		}
		after, err := fake.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		again, err := reconciler.Plan(desired, after, opts)
		if err != nil {
			t.Fatalf("seed %d: second Plan: %v", seed, err)
		}
		if !again.Empty() {
			t.Fatalf("seed %d: planning after the apply gives actions:\n%s\nfirst plan:\n%s\nactual before:\n%s",
				seed, reconciler.ActionStrings(again.Actions), reconciler.PlanText(res), dumpActual(actual))
		}
		pods := map[string]reconciler.ActualPod{}
		for _, p := range after.Pods {
			pods[reconciler.JoinName(p.Namespace, p.Name)] = p
		}
		for _, d := range desired.Pods {
			if a, ok := pods[reconciler.JoinName(d.Namespace, d.Name)]; !ok || a.Hash != d.Hash || !a.SandboxReady {
				t.Fatalf("seed %d: after the apply pod %s is %+v", seed, d.Name, a)
			}
		}
		if opts.Prune && len(after.Pods) != len(desired.Pods) {
			t.Fatalf("seed %d: after a pruning apply the host runs %d pods, want %d", seed, len(after.Pods), len(desired.Pods))
		}
	}
}

// checkInvariants checks the rules every plan follows.
func checkInvariants(t *testing.T, seed uint64, res reconciler.PlanResult, opts reconciler.PlanOptions) {
	t.Helper()
	podAction := map[string]reconciler.Action{}
	for _, a := range res.Actions {
		key := reconciler.JoinName(a.Subject.Namespace, a.Subject.Name)
		switch a.Subject.Type {
		case reconciler.SubjectClaim:
			if a.Kind != reconciler.Create {
				t.Fatalf("seed %d: %s: claims are only ever created", seed, a)
			}
		case reconciler.SubjectPod:
			if prev, dup := podAction[key]; dup {
				t.Fatalf("seed %d: two actions for one pod: %s and %s", seed, prev, a)
			}
			podAction[key] = a
		}
		if a.Kind == reconciler.Delete && !opts.Prune {
			t.Fatalf("seed %d: %s without Prune", seed, a)
		}
	}
	for _, a := range res.Actions {
		if a.Subject.Type != reconciler.SubjectContainer {
			continue
		}
		if pa, ok := podAction[reconciler.JoinName(a.Subject.Namespace, a.Subject.Name)]; ok && pa.Kind != reconciler.Update {
			t.Fatalf("seed %d: %s on a pod that is also %s", seed, a, pa)
		}
	}
}

// genState generates a desired state and an actual state that is a
// random mix of converged, drifted, outdated and obsolete.
func genState(r *rand.Rand) (reconciler.Desired, reconciler.Actual) {
	var d reconciler.Desired
	var a reconciler.Actual
	pool := []string{"n0", "n1", "n2", "n3"}
	for _, name := range pool {
		if r.IntN(2) == 0 {
			d.Networks = append(d.Networks, reconciler.Network{Name: name, Type: "bridge", Hash: "net-v1"})
		}
	}
	for i := range 3 {
		if r.IntN(2) == 0 {
			d.Claims = append(d.Claims, reconciler.Claim{Namespace: "default", Name: fmt.Sprintf("c%d", i)})
		}
	}
	policies := []reconciler.RestartPolicy{reconciler.RestartAlways, reconciler.RestartOnFailure, reconciler.RestartNever}
	for i := range r.IntN(7) {
		p := reconciler.Pod{
			Namespace: "default", Name: fmt.Sprintf("p%d", i), Hash: []string{"spec-a", "spec-b"}[r.IntN(2)],
			RestartPolicy: policies[r.IntN(3)], TerminationGracePeriod: time.Duration(r.IntN(3)) * time.Second,
		}
		for j := range r.IntN(2) {
			p.InitContainers = append(p.InitContainers, reconciler.Container{Name: fmt.Sprintf("init%d", j)})
		}
		for j := range 1 + r.IntN(3) {
			p.Containers = append(p.Containers, reconciler.Container{Name: fmt.Sprintf("c%d", j)})
		}
		for _, n := range d.Networks {
			if r.IntN(3) == 0 {
				p.Networks = append(p.Networks, n.Name)
			}
		}
		for _, c := range d.Claims {
			if r.IntN(3) == 0 {
				p.Volumes = append(p.Volumes, reconciler.Volume{Name: c.Name, Source: c})
			}
		}
		d.Pods = append(d.Pods, p)
	}

	for _, name := range pool {
		desired := slices.ContainsFunc(d.Networks, func(n reconciler.Network) bool { return n.Name == name })
		switch r.IntN(3) {
		case 0: // absent
		case 1:
			a.Networks = append(a.Networks, reconciler.ActualNetwork{Name: name, Hash: "net-v1"})
		case 2:
			if desired {
				a.Networks = append(a.Networks, reconciler.ActualNetwork{Name: name, Hash: "net-v0"})
			} else {
				a.Networks = append(a.Networks, reconciler.ActualNetwork{Name: name, Hash: "net-v1"})
			}
		}
	}
	for i := range 4 {
		if r.IntN(2) == 0 {
			a.Claims = append(a.Claims, reconciler.ActualClaim{Namespace: "default", Name: fmt.Sprintf("c%d", i)})
		}
	}
	for _, p := range d.Pods {
		if r.IntN(4) == 0 {
			continue // not running
		}
		ap := reconciler.ActualPod{Namespace: p.Namespace, Name: p.Name, Hash: p.Hash, SandboxReady: r.IntN(10) > 0, Networks: p.Networks}
		switch r.IntN(8) {
		case 0:
			ap.Hash = "spec-old"
		case 1:
			ap.Hash = ""
		}
		for _, c := range p.InitContainers {
			switch r.IntN(3) {
			case 0:
				ap.Containers = append(ap.Containers, reconciler.ActualContainer{Name: c.Name, State: reconciler.Exited})
			case 1:
				ap.Containers = append(ap.Containers, genExited(r, c.Name))
			}
		}
		for _, c := range p.Containers {
			switch r.IntN(6) {
			case 0: // absent
			case 1:
				ap.Containers = append(ap.Containers, reconciler.ActualContainer{Name: c.Name, State: reconciler.Missing})
			case 2:
				ap.Containers = append(ap.Containers, reconciler.ActualContainer{Name: c.Name, State: reconciler.Created})
			case 3:
				ap.Containers = append(ap.Containers, genExited(r, c.Name))
			default:
				ap.Containers = append(ap.Containers, reconciler.ActualContainer{Name: c.Name, State: reconciler.Running, Restarts: r.IntN(3)})
			}
		}
		if r.IntN(20) == 0 {
			ap.Containers = append(ap.Containers, reconciler.ActualContainer{Name: "stray", State: reconciler.Running})
		}
		a.Pods = append(a.Pods, ap)
	}
	for i := range r.IntN(4) {
		ap := reconciler.ActualPod{Namespace: "default", Name: fmt.Sprintf("old%d", i), Hash: "spec-old", SandboxReady: true,
			Containers: []reconciler.ActualContainer{{Name: "c0", State: reconciler.Running}}}
		for _, n := range pool {
			if r.IntN(3) == 0 {
				ap.Networks = append(ap.Networks, n)
			}
		}
		a.Pods = append(a.Pods, ap)
	}
	r.Shuffle(len(a.Pods), func(i, j int) { a.Pods[i], a.Pods[j] = a.Pods[j], a.Pods[i] })
	return d, a
}

// genExited generates an exited container with a random exit code,
// restart count and finish time around its back-off.
func genExited(r *rand.Rand, name string) reconciler.ActualContainer {
	c := reconciler.ActualContainer{Name: name, State: reconciler.Exited, ExitCode: r.IntN(2), Restarts: r.IntN(7)}
	c.Streak = r.IntN(c.Restarts + 1)
	if r.IntN(5) > 0 {
		c.FinishedAt = reconciler.Now.Add(-time.Duration(r.IntN(400)) * time.Second)
	}
	return c
}

// dumpActual formats an actual state for failure messages.
func dumpActual(a reconciler.Actual) string {
	s := ""
	for _, p := range a.Pods {
		s += fmt.Sprintf("pod %s hash=%s sandbox=%v networks=%v\n", p.Name, p.Hash, p.SandboxReady, p.Networks)
		for _, c := range p.Containers {
			s += fmt.Sprintf("  %s %s exit=%d restarts=%d finished=%v\n", c.Name, c.State, c.ExitCode, c.Restarts, reconciler.Now.Sub(c.FinishedAt))
		}
	}
	s += fmt.Sprintf("networks %+v\nclaims %+v\n", a.Networks, a.Claims)
	return s
}
