package reconciler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// strategyDeployment is a Deployment of one busybox container with the
// given strategy block (YAML under spec, indented by 2) and a VERSION
// environment variable, so that changing version changes the spec hash.
func strategyDeployment(name string, replicas int, strategy, version string) string {
	return testenv.Deployment{Name: name, Replicas: replicas, Strategy: strategy, Container: testenv.Container{Version: version}}.YAML()
}

// TestRolloutOf checks how a Deployment's strategy resolves: percentages
// against replicas (maxUnavailable down, maxSurge up), defaults of 25%, and
// at least one pod at a time.
func TestRolloutOf(t *testing.T) {
	tests := []struct {
		name     string
		replicas int
		strategy string
		want     reconciler.Rollout
	}{
		{"default 25% of 6: maxUnavailable rounds down, maxSurge up", 6, "", reconciler.Rollout{Rolling: true, MaxUnavailable: 1, MaxSurge: 2, Replicas: 6}},
		{"default 25% of 10", 10, "", reconciler.Rollout{Rolling: true, MaxUnavailable: 2, MaxSurge: 3, Replicas: 10}},
		{"default of 2 replicas: maxUnavailable 0, maxSurge 1", 2, "", reconciler.Rollout{Rolling: true, MaxUnavailable: 0, MaxSurge: 1, Replicas: 2}},
		{"absolute", 6, "  strategy:\n    rollingUpdate: {maxUnavailable: 2, maxSurge: 1}\n", reconciler.Rollout{Rolling: true, MaxUnavailable: 2, MaxSurge: 1, Replicas: 6}},
		{"percent", 6, "  strategy:\n    rollingUpdate: {maxUnavailable: 50%, maxSurge: 10%}\n", reconciler.Rollout{Rolling: true, MaxUnavailable: 3, MaxSurge: 1, Replicas: 6}},
		{"100%", 3, "  strategy:\n    rollingUpdate: {maxUnavailable: 100%, maxSurge: 100%}\n", reconciler.Rollout{Rolling: true, MaxUnavailable: 3, MaxSurge: 3, Replicas: 3}},
		{"surge only", 6, "  strategy:\n    rollingUpdate: {maxUnavailable: 0, maxSurge: 3}\n", reconciler.Rollout{Rolling: true, MaxUnavailable: 0, MaxSurge: 3, Replicas: 6}},
		{"no surge", 6, "  strategy:\n    rollingUpdate: {maxUnavailable: 1, maxSurge: 0}\n", reconciler.Rollout{Rolling: true, MaxUnavailable: 1, Replicas: 6}},
		{"both round to 0: maxUnavailable 1", 2, "  strategy:\n    rollingUpdate: {maxUnavailable: 10%, maxSurge: 0}\n", reconciler.Rollout{Rolling: true, MaxUnavailable: 1, Replicas: 2}},
		{"minReadySeconds", 4, "  minReadySeconds: 5\n", reconciler.Rollout{Rolling: true, MaxUnavailable: 1, MaxSurge: 1, Replicas: 4, MinReady: 5 * time.Second}},
		{"recreate", 6, "  strategy:\n    type: Recreate\n", reconciler.Rollout{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, notices := reconciler.ExpandText(t, strategyDeployment("web", tt.replicas, tt.strategy, "1"))
			if len(notices) != 0 {
				t.Fatalf("notices: %v", notices)
			}
			for _, p := range d.Pods {
				if p.Rollout != tt.want {
					t.Fatalf("pod %s: Rollout = %+v, want %+v", p.Name, p.Rollout, tt.want)
				}
			}
		})
	}
}

// TestRollingUpdatePlan checks single plans of a rolling update: how many
// pods are replaced, which first, and what the others wait for.
func TestRollingUpdatePlan(t *testing.T) {
	const strategy = "  strategy:\n    rollingUpdate: {maxUnavailable: 2, maxSurge: 0}\n"
	old, _ := reconciler.ExpandText(t, strategyDeployment("web", 6, strategy, "1"))
	desired, _ := reconciler.ExpandText(t, strategyDeployment("web", 6, strategy, "2"))
	short := func(h string) string { return reconciler.ShortHash(h) }
	replace := func(name string) string {
		return "-/+ replace pod default/" + name + " (spec changed: " + short(old.Pods[0].Hash) + " → " + short(desired.Pods[0].Hash) + ")\n"
	}
	tests := []struct {
		name         string
		rolling      bool
		tweak        func(a *reconciler.Actual)
		want         string
		wantContinue bool
	}{
		{
			name: "two of six at a time", rolling: true, wantContinue: true,
			want: replace("web-0") + replace("web-1") +
				"wait pod default/web-2: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:00\n" +
				"wait pod default/web-3: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:00\n" +
				"wait pod default/web-4: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:00\n" +
				"wait pod default/web-5: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:00\n",
		},
		{
			name: "without RollingUpdates all at once",
			want: replace("web-0") + replace("web-1") + replace("web-2") + replace("web-3") + replace("web-4") + replace("web-5"),
		},
		{
			name: "an unavailable changed pod goes first and uses the budget", rolling: true, wantContinue: true,
			tweak: func(a *reconciler.Actual) {
				a.Pods[4].Containers[0] = reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: 1}
			},
			want: replace("web-0") + replace("web-4") +
				"wait pod default/web-1: rolling update: 2 of 6 replaced at a time; waiting for default/web-4, default/web-0 until 12:00:00\n" +
				"wait pod default/web-2: rolling update: 2 of 6 replaced at a time; waiting for default/web-4, default/web-0 until 12:00:00\n" +
				"wait pod default/web-3: rolling update: 2 of 6 replaced at a time; waiting for default/web-4, default/web-0 until 12:00:00\n" +
				"wait pod default/web-5: rolling update: 2 of 6 replaced at a time; waiting for default/web-4, default/web-0 until 12:00:00\n",
		},
		{
			name: "three unavailable changed pods are all replaced, nothing else", rolling: true, wantContinue: true,
			tweak: func(a *reconciler.Actual) {
				for _, i := range []int{1, 3, 5} {
					a.Pods[i].SandboxReady = false
				}
			},
			want: replace("web-1") + replace("web-3") + replace("web-5") +
				"wait pod default/web-0: rolling update: 2 of 6 replaced at a time; waiting for default/web-1, default/web-3, default/web-5 until 12:00:00\n" +
				"wait pod default/web-2: rolling update: 2 of 6 replaced at a time; waiting for default/web-1, default/web-3, default/web-5 until 12:00:00\n" +
				"wait pod default/web-4: rolling update: 2 of 6 replaced at a time; waiting for default/web-1, default/web-3, default/web-5 until 12:00:00\n",
		},
		{
			name: "new pods that do not run stop the rollout", rolling: true,
			tweak: func(a *reconciler.Actual) {
				for _, i := range []int{0, 1} {
					a.Pods[i].Hash = desired.Pods[i].Hash
					a.Pods[i].Containers[0] = reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: 1, Restarts: 3, Streak: 3, FinishedAt: reconciler.Now}
				}
			},
			want: "wait pod default/web-2: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1\n" +
				"wait pod default/web-3: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1\n" +
				"wait pod default/web-4: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1\n" +
				"wait pod default/web-5: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1\n" +
				"wait container default/web-0/main: container main exited 1, restart 4 waits for back-off 40s until 12:00:40\n" +
				"wait container default/web-1/main: container main exited 1, restart 4 waits for back-off 40s until 12:00:40\n",
		},
		{
			name: "a missing new pod is created and counts as unavailable", rolling: true, wantContinue: true,
			tweak: func(a *reconciler.Actual) { a.Pods = a.Pods[1:] },
			want: "+ create pod default/web-0 (not running)\n" + replace("web-1") +
				"wait pod default/web-2: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:00\n" +
				"wait pod default/web-3: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:00\n" +
				"wait pod default/web-4: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:00\n" +
				"wait pod default/web-5: rolling update: 2 of 6 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:00\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actual := reconciler.Converged(old)
			if tt.tweak != nil {
				tt.tweak(&actual)
			}
			res, err := reconciler.Plan(desired, actual, reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: tt.rolling})
			if err != nil {
				t.Fatal(err)
			}
			if got := reconciler.PlanText(res); got != tt.want {
				t.Errorf("plan:\n--- got\n%s--- want\n%s", got, tt.want)
			}
			if res.Continue != tt.wantContinue {
				t.Errorf("Continue = %v, want %v", res.Continue, tt.wantContinue)
			}
			if tt.wantContinue && !res.NextCheck.Equal(reconciler.Now) {
				t.Errorf("NextCheck = %v, want now", res.NextCheck)
			}
		})
	}
}

// TestRollingUpdateRecreate checks that strategy Recreate replaces every
// changed pod in one plan even with RollingUpdates.
func TestRollingUpdateRecreate(t *testing.T) {
	const strategy = "  strategy:\n    type: Recreate\n"
	old, _ := reconciler.ExpandText(t, strategyDeployment("web", 4, strategy, "1"))
	desired, _ := reconciler.ExpandText(t, strategyDeployment("web", 4, strategy, "2"))
	res, err := reconciler.Plan(desired, reconciler.Converged(old), reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 4 || len(res.Waiting) != 0 || res.Continue {
		t.Errorf("plan:\n%s", reconciler.PlanText(res))
	}
}

// TestExecuteRollout checks that ExecuteRollout carries a rolling update
// to its end in one call, never replacing more than maxUnavailable pods in
// one round, and stops on a rollout whose new pods do not come up.
func TestExecuteRollout(t *testing.T) {
	const strategy = "  strategy:\n    rollingUpdate: {maxUnavailable: 2, maxSurge: 0}\n"
	old, _ := reconciler.ExpandText(t, strategyDeployment("web", 5, strategy, "1"))
	desired, _ := reconciler.ExpandText(t, strategyDeployment("web", 5, strategy, "2"))
	fake := reconcilertest.NewFake(reconciler.Converged(old))
	opts := reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true}
	res, err := reconciler.Plan(desired, reconciler.Converged(old), opts)
	if err != nil {
		t.Fatal(err)
	}
	var rounds []int
	inRound := 0
	clock := func() time.Time {
		rounds = append(rounds, inRound)
		inRound = 0
		return reconciler.Now
	}
	last, rep, err := reconciler.ExecuteRollout(context.Background(), fake, desired, res, opts, reconciler.ExecOptions{
		OnDone: func(a reconciler.Action, err error, took time.Duration) { inRound++ },
	}, clock, reconciler.RolloutHooks{})
	if err != nil || !rep.OK() {
		t.Fatalf("ExecuteRollout: %v, %v", err, rep.Err())
	}
	rounds = append(rounds, inRound)
	if fmt.Sprint(rounds) != "[2 2 1]" || rep.Succeeded != 5 || last.Continue || len(last.Waiting) != 0 {
		t.Errorf("rounds of actions %v, %d succeeded, last plan:\n%s", rounds, rep.Succeeded, reconciler.PlanText(last))
	}
	after, _ := fake.Observe(context.Background())
	if again, _ := reconciler.Plan(desired, after, opts); !again.Empty() || len(again.Waiting) != 0 {
		t.Errorf("after ExecuteRollout:\n%s", reconciler.PlanText(again))
	}

	// A third version whose new pods crash: ExecuteRollout stops with the
	// rollout waiting instead of taking every pod down.
	broken, _ := reconciler.ExpandText(t, strategyDeployment("web", 5, strategy, "3"))
	res, err = reconciler.Plan(broken, after, opts)
	if err != nil {
		t.Fatal(err)
	}
	crash := &crashingRuntime{Fake: fake}
	last, rep, err = reconciler.ExecuteRollout(context.Background(), crash, broken, res, opts, reconciler.ExecOptions{}, func() time.Time { return reconciler.Now }, reconciler.RolloutHooks{})
	if err != nil || !rep.OK() {
		t.Fatalf("ExecuteRollout: %v, %v", err, rep.Err())
	}
	// 2 replacements, and the first restart of each crashed container, at once.
	if rep.Succeeded != 4 || last.Continue || !strings.Contains(reconciler.PlanText(last), "waiting for default/web-0, default/web-1") {
		t.Errorf("%d succeeded; last plan:\n%s", rep.Succeeded, reconciler.PlanText(last))
	}
}

// crashingRuntime is a Fake whose pods' containers exit at once.
type crashingRuntime struct{ *reconcilertest.Fake }

// CreatePod creates the pod, then marks its containers exited.
func (c *crashingRuntime) CreatePod(ctx context.Context, p reconciler.Pod) error {
	if err := c.Fake.CreatePod(ctx, p); err != nil {
		return err
	}
	for _, ct := range p.Containers {
		if err := c.SetContainer(p.Namespace, p.Name, reconciler.ActualContainer{Name: ct.Name, State: reconciler.Exited, ExitCode: 1, FinishedAt: reconciler.Now}); err != nil {
			return err
		}
	}
	return nil
}

// RestartContainer restarts the container, which exits again at once.
func (c *crashingRuntime) RestartContainer(ctx context.Context, p reconciler.Pod, name string) error {
	if err := c.Fake.RestartContainer(ctx, p, name); err != nil {
		return err
	}
	a, _ := c.Fake.Observe(ctx)
	for _, ap := range a.Pods {
		if ap.Namespace != p.Namespace || ap.Name != p.Name {
			continue
		}
		for _, ct := range ap.Containers {
			if ct.Name == name {
				ct.State, ct.ExitCode, ct.FinishedAt = reconciler.Exited, 1, reconciler.Now
				return c.SetContainer(p.Namespace, p.Name, ct)
			}
		}
	}
	return nil
}

// TestRollingUpdateProperties plans and executes random rolling updates
// over random hosts until they converge, checking in every round that a
// plan takes down no more available pods of a Deployment than its
// maxUnavailable leaves (and so at most maxUnavailable when all were
// available), and that rounds converge to the desired state.
func TestRollingUpdateProperties(t *testing.T) {
	const runs = 300
	for seed := range uint64(runs) {
		r := rand.New(rand.NewPCG(seed, 0x726f6c6c))
		desired, actual := genRollout(r)
		fake := reconcilertest.NewFake(actual)
		opts := reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true, Prune: true, AllowEmpty: true}
		for round := 0; ; round++ {
			if round > 20 {
				t.Fatalf("seed %d: no convergence after %d rounds", seed, round)
			}
			actual, err := fake.Observe(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			res, err := reconciler.Plan(desired, actual, opts)
			if err != nil {
				t.Fatalf("seed %d: Plan: %v", seed, err)
			}
			checkInvariants(t, seed, res, opts)
			checkRolloutBudget(t, seed, desired, actual, res)
			if res.Empty() {
				if len(res.Waiting) != 0 {
					t.Fatalf("seed %d round %d: no actions but waits:\n%s", seed, round, reconciler.PlanText(res))
				}
				break
			}
			if rep := reconciler.Execute(context.Background(), fake, res.Actions, reconciler.ExecOptions{}); !rep.OK() {
				t.Fatalf("seed %d: execute: %v", seed, rep.Err())
			}
		}
		after, _ := fake.Observe(context.Background())
		pods := map[string]reconciler.ActualPod{}
		for _, p := range after.Pods {
			pods[reconciler.JoinName(p.Namespace, p.Name)] = p
		}
		for i := range desired.Pods {
			d := &desired.Pods[i]
			if a, ok := pods[reconciler.JoinName(d.Namespace, d.Name)]; !ok || a.Hash != d.Hash || !isAvailable(d, &a) {
				t.Fatalf("seed %d: after convergence pod %s is %+v", seed, d.Name, a)
			}
		}
		if len(after.Pods) != len(desired.Pods) {
			t.Fatalf("seed %d: the host runs %d pods, want %d", seed, len(after.Pods), len(desired.Pods))
		}
	}
}

// checkRolloutBudget checks that res replaces, of each rolling
// Deployment, at most as many available pods as maxUnavailable leaves
// once the unavailable ones are counted.
func checkRolloutBudget(t *testing.T, seed uint64, desired reconciler.Desired, actual reconciler.Actual, res reconciler.PlanResult) {
	t.Helper()
	have := map[string]*reconciler.ActualPod{}
	for i := range actual.Pods {
		have[reconciler.JoinName(actual.Pods[i].Namespace, actual.Pods[i].Name)] = &actual.Pods[i]
	}
	replaced := map[string]bool{}
	for _, a := range res.Actions {
		if a.Kind == reconciler.Replace {
			replaced[reconciler.JoinName(a.Subject.Namespace, a.Subject.Name)] = true
		}
	}
	down, takenDown, budget := map[string]int{}, map[string]int{}, map[string]int{}
	for i := range desired.Pods {
		d := &desired.Pods[i]
		if !d.Rollout.Rolling {
			continue
		}
		key := reconciler.JoinName(d.Namespace, d.Name)
		budget[d.Owner.Name] = d.Rollout.MaxUnavailable
		switch {
		case !isAvailable(d, have[key]):
			down[d.Owner.Name]++
		case replaced[key]:
			takenDown[d.Owner.Name]++
		}
	}
	for owner, n := range takenDown {
		if n > max(budget[owner]-down[owner], 0) {
			t.Fatalf("seed %d: %s: the plan takes down %d available pods with %d already down and maxUnavailable %d:\n%s",
				seed, owner, n, down[owner], budget[owner], reconciler.PlanText(res))
		}
	}
}

// genRollout generates Deployments (rolling or Recreate) whose pods run an
// older spec, the current one, or are broken or missing.
func genRollout(r *rand.Rand) (reconciler.Desired, reconciler.Actual) {
	var d reconciler.Desired
	var a reconciler.Actual
	for i := range 1 + r.IntN(3) {
		owner := reconciler.Owner{Kind: "Deployment", Name: fmt.Sprintf("d%d", i)}
		replicas := 1 + r.IntN(8)
		ro := reconciler.Rollout{Rolling: r.IntN(4) > 0, Replicas: replicas, MaxUnavailable: 1 + r.IntN(3)}
		if !ro.Rolling {
			ro = reconciler.Rollout{}
		}
		for j := range replicas {
			p := reconciler.Pod{Namespace: "default", Name: fmt.Sprintf("%s-%d", owner.Name, j), Owner: owner, Ordinal: j,
				Hash: "spec-new", RestartPolicy: reconciler.RestartAlways, Rollout: ro,
				Containers: []reconciler.Container{{Name: "c0"}, {Name: "c1"}}}
			d.Pods = append(d.Pods, p)
			ap := reconciler.ActualPod{Namespace: p.Namespace, Name: p.Name, Hash: []string{"spec-old", "spec-new"}[r.IntN(2)], SandboxReady: r.IntN(8) > 0}
			for _, c := range p.Containers {
				st := reconciler.ActualContainer{Name: c.Name, State: reconciler.Running}
				switch r.IntN(10) {
				case 0:
					st = reconciler.ActualContainer{Name: c.Name, State: reconciler.Missing}
				case 1:
					st = reconciler.ActualContainer{Name: c.Name, State: reconciler.Exited, ExitCode: 1, FinishedAt: reconciler.Now.Add(-time.Hour)}
				}
				ap.Containers = append(ap.Containers, st)
			}
			switch r.IntN(10) {
			case 0: // not on the host
				continue
			case 1:
				ap.Hash = ""
			}
			a.Pods = append(a.Pods, ap)
		}
	}
	reconciler.SortDesired(&d)
	r.Shuffle(len(a.Pods), func(i, j int) { a.Pods[i], a.Pods[j] = a.Pods[j], a.Pods[i] })
	return d, a
}

// isAvailable is available at now, without the time it becomes so.
func isAvailable(d *reconciler.Pod, a *reconciler.ActualPod) bool {
	ok, _, _ := reconciler.Available(d, a, reconciler.Now)
	return ok
}

// TestRollingUpdateMinReady checks that a pod counts as available only
// minReadySeconds after its containers started, and that the held pods'
// wait says when that is.
func TestRollingUpdateMinReady(t *testing.T) {
	const strategy = "  minReadySeconds: 10\n  strategy:\n    rollingUpdate: {maxUnavailable: 2, maxSurge: 0}\n"
	old, _ := reconciler.ExpandText(t, strategyDeployment("web", 4, strategy, "1"))
	desired, _ := reconciler.ExpandText(t, strategyDeployment("web", 4, strategy, "2"))
	actual := reconciler.Converged(old)
	for i, age := range []time.Duration{4 * time.Second, 8 * time.Second} {
		actual.Pods[i].Hash = desired.Pods[i].Hash
		actual.Pods[i].Containers[0].StartedAt = reconciler.Now.Add(-age)
	}
	res, err := reconciler.Plan(desired, actual, reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "wait pod default/web-2: rolling update: 2 of 4 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:02\n" +
		"wait pod default/web-3: rolling update: 2 of 4 replaced at a time; waiting for default/web-0, default/web-1 until 12:00:02\n"
	if got := reconciler.PlanText(res); got != want || res.Continue || !res.NextCheck.Equal(reconciler.Now.Add(2*time.Second)) {
		t.Errorf("plan (continue %v, next check %v):\n--- got\n%s--- want\n%s", res.Continue, res.NextCheck, got, want)
	}
	res, err = reconciler.Plan(desired, actual, reconciler.PlanOptions{Now: reconciler.Now.Add(2 * time.Second), RollingUpdates: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := reconciler.PlanText(res); !strings.HasPrefix(got, "-/+ replace pod default/web-2") || !strings.Contains(got, "wait pod default/web-3") || !res.Continue {
		t.Errorf("2s later:\n%s", got)
	}
}

// TestRollingUpdateReadiness checks that, with readiness known, a new pod
// that runs but is not Ready holds the rollout (Pending, no time to wait
// for), and that minReadySeconds counts from when it became Ready, not
// from when its containers started.
func TestRollingUpdateReadiness(t *testing.T) {
	const strategy = "  minReadySeconds: 10\n  strategy:\n    rollingUpdate: {maxUnavailable: 1, maxSurge: 0}\n"
	old, _ := reconciler.ExpandText(t, strategyDeployment("web", 3, strategy, "1"))
	desired, _ := reconciler.ExpandText(t, strategyDeployment("web", 3, strategy, "2"))
	const held = "wait pod default/web-1: rolling update: 1 of 3 replaced at a time; waiting for default/web-0"
	tests := []struct {
		name        string
		ready       bool
		readySince  time.Duration // before now
		wantPlan    string
		wantPending bool
		wantNext    time.Time
	}{
		{name: "running, not Ready", wantPlan: held + "\n" + strings.Replace(held, "web-1", "web-2", 1) + "\n", wantPending: true},
		{name: "Ready for 4s of 10", ready: true, readySince: 4 * time.Second,
			wantPlan:    held + " until 12:00:06\n" + strings.Replace(held, "web-1", "web-2", 1) + " until 12:00:06\n",
			wantPending: true, wantNext: reconciler.Now.Add(6 * time.Second)},
		{name: "Ready for 10s", ready: true, readySince: 10 * time.Second, wantPlan: "-/+ replace pod default/web-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actual := reconciler.Converged(old)
			for i := range actual.Pods {
				a := &actual.Pods[i]
				a.ReadyKnown, a.Ready, a.ReadySince = true, true, reconciler.Now.Add(-time.Hour)
			}
			a := &actual.Pods[0]
			a.Hash = desired.Pods[0].Hash
			a.Containers[0].StartedAt = reconciler.Now.Add(-time.Hour) // long running: only readiness holds it
			a.Ready, a.ReadySince = tt.ready, time.Time{}
			if tt.ready {
				a.ReadySince = reconciler.Now.Add(-tt.readySince)
			}
			res, err := reconciler.Plan(desired, actual, reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := reconciler.PlanText(res); !strings.HasPrefix(got, tt.wantPlan) {
				t.Errorf("plan:\n--- got\n%s--- want\n%s", got, tt.wantPlan)
			}
			if res.Pending != tt.wantPending || res.Continue == tt.wantPending || !res.NextCheck.Equal(tt.wantNext) && tt.wantPending {
				t.Errorf("Pending %v, Continue %v, NextCheck %v; want Pending %v, NextCheck %v", res.Pending, res.Continue, res.NextCheck, tt.wantPending, tt.wantNext)
			}
		})
	}
}

// TestExecuteRolloutWaitsForReady checks that ExecuteRollout with hooks
// waits for each replaced pod to be Ready before it replaces the next
// (the last batch is not waited for: nothing is held back by then),
// and stops when Wait gives up.
func TestExecuteRolloutWaitsForReady(t *testing.T) {
	const strategy = "  strategy:\n    rollingUpdate: {maxUnavailable: 1, maxSurge: 0}\n"
	old, _ := reconciler.ExpandText(t, strategyDeployment("web", 3, strategy, "1"))
	desired, _ := reconciler.ExpandText(t, strategyDeployment("web", 3, strategy, "2"))
	fake := reconcilertest.NewFake(reconciler.Converged(old))
	opts := reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true}
	// Readiness as a probe engine would give it: a pod of the new spec
	// becomes Ready at the first Wait after it was first seen.
	seen := map[string]bool{}
	ready := map[string]bool{}
	var order []string
	hooks := reconciler.RolloutHooks{
		Observed: func(a reconciler.Actual) reconciler.Actual {
			for i := range a.Pods {
				p := &a.Pods[i]
				key := p.Name
				if p.Hash != desired.Pods[0].Hash {
					p.ReadyKnown, p.Ready = true, true
					continue
				}
				if !seen[key] {
					seen[key] = true
					order = append(order, "up "+key)
				}
				p.ReadyKnown, p.Ready, p.ReadySince = true, ready[key], reconciler.Now
			}
			return a
		},
		Wait: func(ctx context.Context, until time.Time) bool {
			for key := range seen {
				if !ready[key] {
					ready[key] = true
					order = append(order, "ready "+key)
				}
			}
			return true
		},
	}
	res, err := reconciler.Plan(desired, reconciler.Converged(old), opts)
	if err != nil {
		t.Fatal(err)
	}
	last, rep, err := reconciler.ExecuteRollout(context.Background(), fake, desired, res, opts, reconciler.ExecOptions{
		OnDone: func(a reconciler.Action, err error, took time.Duration) {
			order = append(order, "replace "+a.Subject.Name)
		},
	}, func() time.Time { return reconciler.Now }, hooks)
	if err != nil || !rep.OK() {
		t.Fatalf("ExecuteRollout: %v, %v", err, rep.Err())
	}
	want := "[replace web-0 up web-0 ready web-0 replace web-1 up web-1 ready web-1 replace web-2]"
	if got := fmt.Sprint(order); got != want || last.Pending || len(last.Waiting) != 0 {
		t.Errorf("order %s\nwant  %s\nlast plan:\n%s", got, want, reconciler.PlanText(last))
	}

	// A version whose pods never become Ready: Wait gives up, the
	// rollout stops with one pod replaced and the others waiting.
	v3, _ := reconciler.ExpandText(t, strategyDeployment("web", 3, strategy, "3"))
	after, _ := fake.Observe(context.Background())
	res, _ = reconciler.Plan(v3, after, opts)
	waits := 0
	hooks = reconciler.RolloutHooks{
		Observed: func(a reconciler.Actual) reconciler.Actual {
			for i := range a.Pods {
				p := &a.Pods[i]
				p.ReadyKnown, p.Ready = true, p.Hash != v3.Pods[0].Hash
			}
			return a
		},
		Wait: func(ctx context.Context, until time.Time) bool { waits++; return waits < 3 },
	}
	last, rep, err = reconciler.ExecuteRollout(context.Background(), fake, v3, res, opts, reconciler.ExecOptions{}, func() time.Time { return reconciler.Now }, hooks)
	if err != nil || rep.Succeeded != 1 || waits != 3 || !last.Pending || !strings.Contains(reconciler.PlanText(last), "waiting for default/web-0") {
		t.Errorf("err %v, %d succeeded, %d waits; last plan:\n%s", err, rep.Succeeded, waits, reconciler.PlanText(last))
	}
}
