package reconciler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// TestSurgeNames: a surge name is the slot's name and 10 hex digits of the
// spec hash, and SlotOf reads the slot back; ordinal names and other
// suffixes are not surge names.
func TestSurgeNames(t *testing.T) {
	const h = "sha256:4759a0d8369a0000000000000000000000000000000000000000000000000000"
	if got := reconciler.SurgeName("web-0", h); got != "web-0-4759a0d836" {
		t.Errorf("SurgeName = %q", got)
	}
	if got := reconciler.SurgeName("web-0", "v2"); len(got) != len("web-0-")+10 || !strings.HasPrefix(got, "web-0-") {
		t.Errorf("SurgeName of a hash that is not hex = %q", got)
	}
	for _, tc := range []struct {
		name string
		slot string
		ok   bool
	}{
		{"web-0-4759a0d836", "web-0", true},
		{"my-app-12-0123456789", "my-app-12", true},
		{"web-0", "", false},            // the slot's own name
		{"web-0-1", "", false},          // Deployment web-0, ordinal 1
		{"web-0-4759A0D836", "", false}, // not lower-case hex
		{"web-0-4759a0d83", "", false},  // 9 digits
		{"web-x-4759a0d836", "", false}, // no ordinal
		{"web-01-4759a0d836", "", false},
		{"4759a0d836", "", false},
	} {
		slot, ok := reconciler.SlotOf(tc.name)
		if slot != tc.slot || ok != tc.ok {
			t.Errorf("SlotOf(%q) = %q, %v; want %q, %v", tc.name, slot, ok, tc.slot, tc.ok)
		}
	}
}

// TestBindSlots: a desired pod takes the name of the pod of its slot that
// runs its spec (so existing pods, named NAME-ORDINAL, keep their names
// and are not restarted), else a surge name when it may surge, else the
// old pod's name (replaced in place).
func TestBindSlots(t *testing.T) {
	surge := "  strategy:\n    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}\n"
	inPlace := "  strategy:\n    rollingUpdate: {maxUnavailable: 1, maxSurge: 0}\n"
	v1, _ := reconciler.ExpandText(t, strategyDeployment("web", 2, surge, "1"))
	v2, _ := reconciler.ExpandText(t, strategyDeployment("web", 2, surge, "2"))
	v2inPlace, _ := reconciler.ExpandText(t, strategyDeployment("web", 2, inPlace, "2"))
	h1, h2 := v1.Pods[0].Hash, v2.Pods[0].Hash
	pod := func(name, hash string) reconciler.ActualPod {
		return reconciler.ActualPod{Namespace: "default", Name: name, Owner: reconciler.Owner{Kind: "Deployment", Name: "web"}, Hash: hash, SandboxReady: true}
	}
	s0, s1 := reconciler.SurgeName("web-0", h2), reconciler.SurgeName("web-1", h2)
	for _, tc := range []struct {
		name    string
		desired reconciler.Desired
		actual  []reconciler.ActualPod
		want    string
	}{
		{"an empty host: the slots' names", v2, nil, "web-0 web-1"},
		{"upgrade of kelpie, same manifests: the names stay", v1, []reconciler.ActualPod{pod("web-0", h1), pod("web-1", h1)}, "web-0 web-1"},
		{"a new template that may surge: surge names", v2, []reconciler.ActualPod{pod("web-0", h1), pod("web-1", h1)}, s0 + " " + s1},
		{"a new template, maxSurge 0: replaced in place", v2inPlace, []reconciler.ActualPod{pod("web-0", h1), pod("web-1", h1)}, "web-0 web-1"},
		{"the surge pod runs: it keeps its name", v2, []reconciler.ActualPod{pod("web-0", h1), pod(s0, h2), pod("web-1", h1)}, s0 + " " + s1},
		{"the slot's name is taken by the new pod: it stays", v2, []reconciler.ActualPod{pod("web-0", h2), pod(s0, h1)}, "web-0 " + "web-1"},
		{"a surge-named old pod: the slot's name comes back", v1, []reconciler.ActualPod{pod(s0, h2), pod(s1, h2)}, reconciler.SurgeName("web-0", h1) + " " + reconciler.SurgeName("web-1", h1)},
		{"an old pod without an owner is not of the slot", v2, []reconciler.ActualPod{{Namespace: "default", Name: "web-0", Hash: h1}}, "web-0 web-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprint(podNames(tc.desired))
			got := reconciler.BindSlots(tc.desired, reconciler.Actual{Pods: tc.actual})
			if names := strings.Join(podNames(got), " "); names != tc.want {
				t.Errorf("names %s, want %s", names, tc.want)
			}
			if fmt.Sprint(podNames(tc.desired)) != before {
				t.Error("BindSlots changed its input")
			}
			again := reconciler.BindSlots(got, reconciler.Actual{Pods: tc.actual})
			if fmt.Sprint(podNames(again)) != fmt.Sprint(podNames(got)) {
				t.Errorf("not idempotent: %v then %v", podNames(got), podNames(again))
			}
			for _, p := range got.Pods {
				if p.Hostname != reconciler.SlotName(&p) {
					t.Errorf("pod %s: host name %s, want the slot's name", p.Name, p.Hostname)
				}
			}
		})
	}
}

// podNames lists the names of d's pods.
func podNames(d reconciler.Desired) []string {
	out := make([]string, len(d.Pods))
	for i, p := range d.Pods {
		out[i] = p.Name
	}
	return out
}

// TestSurgePlan checks the first plan of rolling updates that may surge:
// how many new pods start beside old ones (maxSurge), how many old pods
// are replaced in place (maxUnavailable), and Kubernetes' rounding.
func TestSurgePlan(t *testing.T) {
	for _, tc := range []struct {
		name          string
		replicas      int
		strategy      string
		surged, place int // new pods beside old ones; old pods replaced in place
	}{
		{"maxSurge 1, maxUnavailable 0", 4, "{maxUnavailable: 0, maxSurge: 1}", 1, 0},
		{"maxSurge 2, maxUnavailable 0", 4, "{maxUnavailable: 0, maxSurge: 2}", 2, 0},
		{"maxSurge 1, maxUnavailable 1: both budgets", 4, "{maxUnavailable: 1, maxSurge: 1}", 1, 1},
		{"defaults 25% of 4: one of each", 4, "", 1, 1},
		{"defaults 25% of 2: surge rounds up, unavailable down", 2, "", 1, 0},
		{"maxSurge 30% of 10 rounds up to 3", 10, "{maxUnavailable: 0, maxSurge: 30%}", 3, 0},
		{"maxSurge 0: in place", 4, "{maxUnavailable: 2, maxSurge: 0}", 0, 2},
		{"maxSurge 100%: every pod at once", 3, "{maxUnavailable: 0, maxSurge: 100%}", 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			strategy := ""
			if tc.strategy != "" {
				strategy = "  strategy:\n    rollingUpdate: " + tc.strategy + "\n"
			}
			old, _ := reconciler.ExpandText(t, strategyDeployment("web", tc.replicas, strategy, "1"))
			desired, _ := reconciler.ExpandText(t, strategyDeployment("web", tc.replicas, strategy, "2"))
			res, err := reconciler.Plan(desired, reconciler.Converged(old), reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true})
			if err != nil {
				t.Fatal(err)
			}
			creates, deletes, replaces := 0, 0, 0
			for _, a := range res.Actions {
				switch a.Kind {
				case reconciler.Create:
					creates++
				case reconciler.Delete:
					deletes++
				case reconciler.Replace:
					replaces++
				}
			}
			if surged, place := creates-deletes, deletes+replaces; surged != tc.surged || place != tc.place || !res.Continue {
				t.Errorf("%d surged, %d in place (continue %v), want %d and %d; plan:\n%s", surged, place, res.Continue, tc.surged, tc.place, reconciler.PlanText(res))
			}
		})
	}
}

// TestSurgePredecessors: a slot's old pod is deleted once its surge pod is
// available (without --prune), kept while it comes up, and deleted at once
// when it does not serve.
func TestSurgePredecessors(t *testing.T) {
	const strategy = "  strategy:\n    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}\n"
	old, _ := reconciler.ExpandText(t, strategyDeployment("web", 1, strategy, "1"))
	desired, _ := reconciler.ExpandText(t, strategyDeployment("web", 1, strategy, "2"))
	next := reconciler.SurgeName("web-0", desired.Pods[0].Hash)
	both := func(newReady, oldRunning bool) reconciler.Actual {
		a := reconciler.Converged(old)
		b := reconciler.BindSlots(desired, a)
		a.Pods = append(a.Pods, reconciler.Converged(b).Pods...)
		for i := range a.Pods {
			p := &a.Pods[i]
			p.ReadyKnown = true
			if p.Name == next {
				p.Ready = newReady
			} else {
				p.Ready = oldRunning
				if !oldRunning {
					p.Containers[0].State = reconciler.Exited
				}
			}
		}
		return a
	}
	for _, tc := range []struct {
		name        string
		actual      reconciler.Actual
		want        string
		wantPending bool
	}{
		{"the new pod is available: the old one goes", both(true, true),
			"- delete pod default/web-0 (slot web-0: replaced by the available " + next + ")\n", false},
		{"the new pod comes up: the old one serves", both(false, true),
			"wait pod default/web-0: maxSurge: serves until its replacement default/" + next + " is available\n", true},
		{"the old pod does not serve: it goes at once", both(false, false),
			"- delete pod default/web-0 (slot web-0: not serving; replaced by " + next + ")\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := reconciler.Plan(desired, tc.actual, reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := reconciler.PlanText(res); got != tc.want || res.Pending != tc.wantPending {
				t.Errorf("plan (pending %v):\n--- got\n%s--- want\n%s", res.Pending, got, tc.want)
			}
		})
	}
}

// TestExecuteRolloutSurge carries rolling updates to their end on a fake
// host whose new pods become Ready one Wait after they start, and checks
// Kubernetes' two bounds at every observation: at most replicas+maxSurge
// pods of the Deployment, at least replicas-maxUnavailable of them Ready.
func TestExecuteRolloutSurge(t *testing.T) {
	for _, tc := range []struct {
		replicas, maxUnavailable, maxSurge int
	}{
		{3, 0, 1},
		{4, 1, 1},
		{5, 0, 2},
		{4, 2, 0},
	} {
		name := fmt.Sprintf("%d replicas, maxUnavailable %d, maxSurge %d", tc.replicas, tc.maxUnavailable, tc.maxSurge)
		t.Run(name, func(t *testing.T) {
			strategy := fmt.Sprintf("  strategy:\n    rollingUpdate: {maxUnavailable: %d, maxSurge: %d}\n", tc.maxUnavailable, tc.maxSurge)
			old, _ := reconciler.ExpandText(t, strategyDeployment("web", tc.replicas, strategy, "1"))
			desired, _ := reconciler.ExpandText(t, strategyDeployment("web", tc.replicas, strategy, "2"))
			fake := reconcilertest.NewFake(reconciler.Converged(old))
			opts := reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true}
			seen, ready := map[string]bool{}, map[string]bool{}
			maxPods, minReady := 0, tc.replicas
			hooks := reconciler.RolloutHooks{
				Observed: func(a reconciler.Actual) reconciler.Actual {
					n := 0
					for i := range a.Pods {
						p := &a.Pods[i]
						if p.Hash == desired.Pods[0].Hash {
							seen[p.Name] = true
							p.ReadyKnown, p.Ready, p.ReadySince = true, ready[p.Name], reconciler.Now
						} else {
							p.ReadyKnown, p.Ready = true, true
						}
						if p.Ready {
							n++
						}
					}
					maxPods, minReady = max(maxPods, len(a.Pods)), min(minReady, n)
					return a
				},
				Wait: func(ctx context.Context, until time.Time) bool {
					for name := range seen {
						ready[name] = true
					}
					return true
				},
			}
			res, err := reconciler.Plan(desired, hooks.Observed(reconciler.Converged(old)), opts)
			if err != nil {
				t.Fatal(err)
			}
			last, rep, err := reconciler.ExecuteRollout(context.Background(), fake, desired, res, opts, reconciler.ExecOptions{}, func() time.Time { return reconciler.Now }, hooks)
			if err != nil || !rep.OK() {
				t.Fatalf("ExecuteRollout: %v, %v", err, rep.Err())
			}
			after, _ := fake.Observe(context.Background())
			for name := range seen {
				ready[name] = true
			}
			hooks.Observed(after) // the last batch, once Ready
			if again, _ := reconciler.Plan(desired, hooks.Observed(after), opts); len(after.Pods) != tc.replicas || !again.Empty() || len(again.Waiting) != 0 {
				t.Errorf("after the rollout: %d pods; last plan:\n%s\nplan again:\n%s", len(after.Pods), reconciler.PlanText(last), reconciler.PlanText(again))
			}
			t.Logf("%s: at most %d pods, at least %d Ready", name, maxPods, minReady)
			if maxPods > tc.replicas+tc.maxSurge || minReady < tc.replicas-tc.maxUnavailable {
				t.Errorf("at most %d pods (limit %d), at least %d Ready (limit %d)", maxPods, tc.replicas+tc.maxSurge, minReady, tc.replicas-tc.maxUnavailable)
			}
			if tc.maxSurge > 0 && maxPods != tc.replicas+tc.maxSurge {
				t.Errorf("at most %d pods: the rollout never surged to %d", maxPods, tc.replicas+tc.maxSurge)
			}
		})
	}
}

// TestRolloutOfHostPorts: a pod template that binds host ports does not
// surge (its new pod could not bind the same ports beside the old one).
func TestRolloutOfHostPorts(t *testing.T) {
	const strategy = "  strategy:\n    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}\n"
	for _, tc := range []struct{ name, extra string }{
		{"hostNetwork", "      hostNetwork: true\n"},
		{"hostPort", "          ports:\n          - {containerPort: 8080, hostPort: 80}\n"},
	} {
		yaml := testenv.Deployment{Name: "web", Replicas: 2, Strategy: strategy, Container: testenv.Container{Extra: tc.extra}}.YAML()
		d, _ := reconciler.ExpandText(t, yaml)
		want := reconciler.Rollout{Rolling: true, MaxUnavailable: 1, Replicas: 2}
		if len(d.Pods) != 2 || d.Pods[0].Rollout != want {
			t.Errorf("%s: %d pods, Rollout %+v, want %+v", tc.name, len(d.Pods), d.Pods[0].Rollout, want)
		}
	}
}
