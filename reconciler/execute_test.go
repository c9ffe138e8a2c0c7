package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// createPods is a plan creating n pods.
func createPods(n int) []reconciler.Action {
	var out []reconciler.Action
	for i := range n {
		p := reconciler.TestPod(fmt.Sprintf("p-%d", i), "h", reconciler.RestartAlways, "main")
		out = append(out, reconciler.Action{Kind: reconciler.Create, Subject: reconciler.PodSubject(p.Namespace, p.Name), Stage: reconciler.StagePods, Pod: &p})
	}
	return out
}

// TestExecuteParallelism checks that at most Parallelism actions of a
// stage run at once, and that that many do.
func TestExecuteParallelism(t *testing.T) {
	for _, tt := range []struct{ par, want int }{{0, reconciler.DefaultParallelism}, {1, 1}, {2, 2}, {4, 4}, {6, 6}} {
		t.Run(fmt.Sprintf("parallelism %d", tt.par), func(t *testing.T) {
			actions := createPods(12)
			fake := reconcilertest.NewFake(reconciler.Actual{})
			started := make(chan struct{}, len(actions))
			release := make(chan struct{})
			fake.Hook = func(method, _ string) {
				started <- struct{}{}
				<-release
			}
			done := make(chan reconciler.Report)
			go func() {
				done <- reconciler.Execute(context.Background(), fake, actions, reconciler.ExecOptions{Parallelism: tt.par})
			}()
			deadline := time.After(10 * time.Second)
			for range tt.want {
				select {
				case <-started:
				case <-deadline:
					t.Fatalf("fewer than %d calls started", tt.want)
				}
			}
			close(release)
			rep := <-done
			if !rep.OK() || rep.Succeeded != len(actions) {
				t.Fatalf("report: %+v", rep.Err())
			}
			if got := fake.MaxInFlight(); got != tt.want {
				t.Errorf("at most %d calls ran at once, want %d", got, tt.want)
			}
		})
	}
}

// TestExecuteFailureIsolation checks that a failed action does not stop
// the others of its stage or of later stages, and how it is reported.
func TestExecuteFailureIsolation(t *testing.T) {
	actions := createPods(6)
	lan := reconciler.Network{Name: "lan"}
	actions = append(actions, reconciler.Action{Kind: reconciler.Create, Subject: reconciler.Subject{Type: reconciler.SubjectNetwork, Name: "lan"}, Stage: reconciler.StageSetup, Network: &lan})
	fake := reconcilertest.NewFake(reconciler.Actual{})
	boom := errors.New("boom")
	fake.FailOn("CreatePod", 2, boom)
	fake.FailOn("CreatePod", 5, boom)
	var mu sync.Mutex
	var done []string
	rep := reconciler.Execute(context.Background(), fake, actions, reconciler.ExecOptions{Parallelism: 1, OnDone: func(a reconciler.Action, err error, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		done = append(done, fmt.Sprintf("%s: %v", a.Subject, err))
	}})
	if rep.Succeeded != 5 || rep.Failed != 2 || rep.Skipped != 0 || rep.OK() {
		t.Fatalf("report: %d ok, %d failed, %d skipped", rep.Succeeded, rep.Failed, rep.Skipped)
	}
	want := []string{"network lan: <nil>", "pod default/p-0: <nil>", "pod default/p-1: boom", "pod default/p-2: <nil>",
		"pod default/p-3: <nil>", "pod default/p-4: boom", "pod default/p-5: <nil>"}
	if !slices.Equal(done, want) {
		t.Errorf("OnDone calls:\n got %q\nwant %q", done, want)
	}
	for i, r := range rep.Results {
		if r.Action.Subject != actions[i].Subject {
			t.Errorf("result %d is for %s, want %s (the order given)", i, r.Action.Subject, actions[i].Subject)
		}
	}
	err := rep.Err()
	if !errors.Is(err, boom) {
		t.Errorf("Report.Err() = %v does not wrap the failure", err)
	}
	if want := "2 of 7 actions failed; create pod default/p-1: boom; create pod default/p-4: boom"; err.Error() != want {
		t.Errorf("Report.Err() = %q, want %q", err, want)
	}
}

// TestExecuteDependencies checks that a failed network or claim skips the
// pods that need it, and that networks are not deleted after a failure.
func TestExecuteDependencies(t *testing.T) {
	lan, wan := reconciler.Network{Name: "lan"}, reconciler.Network{Name: "wan"}
	data := reconciler.Claim{Namespace: "default", Name: "data"}
	onLan := reconciler.TestPod("on-lan", "h", reconciler.RestartAlways, "main")
	onLan.Networks = []string{"wan", "lan"}
	onWan := reconciler.TestPod("on-wan", "h", reconciler.RestartAlways, "main")
	onWan.Networks = []string{"wan"}
	db := reconciler.TestPod("db", "h", reconciler.RestartAlways, "main")
	db.Volumes = []reconciler.Volume{{Name: "d", Source: data}}
	plain := reconciler.TestPod("plain", "h", reconciler.RestartAlways, "main")
	old := reconciler.TestPod("old", "h", reconciler.RestartAlways, "main")
	actual := reconciler.Actual{Pods: []reconciler.ActualPod{reconciler.RunningPod(old)}, Networks: []reconciler.ActualNetwork{{Name: "gone"}}}
	res, err := reconciler.Plan(reconciler.Desired{Pods: []reconciler.Pod{onLan, onWan, db, plain}, Networks: []reconciler.Network{lan, wan}, Claims: []reconciler.Claim{data}}, actual,
		reconciler.PlanOptions{Now: reconciler.Now, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	fake := reconcilertest.NewFake(actual)
	fake.FailOn("EnsureNetwork", 1, errors.New("no bridge"))
	fake.FailOn("EnsureClaim", 1, errors.New("disk full"))
	// One at a time, so that "the first EnsureNetwork call" is lan's.
	rep := reconciler.Execute(context.Background(), fake, res.Actions, reconciler.ExecOptions{Parallelism: 1})
	var got []string
	for _, r := range rep.Results {
		got = append(got, fmt.Sprintf("%s: %v", r.Action, r.Err))
	}
	want := []string{
		"+ create network lan (not present): no bridge",
		"+ create network wan (not present): <nil>",
		"+ create claim default/data (not present): disk full",
		"- delete pod default/old (no longer desired): <nil>",
		"+ create pod default/db (not running): not run: claim default/data was not set up",
		"+ create pod default/on-lan (not running): not run: network lan was not set up",
		"+ create pod default/on-wan (not running): <nil>",
		"+ create pod default/plain (not running): <nil>",
		"- delete network gone (no longer desired): not run: an earlier action failed, so a pod may still use the network",
	}
	if !slices.Equal(got, want) {
		t.Errorf("results:\n got %q\nwant %q", got, want)
	}
	if rep.Failed != 2 || rep.Skipped != 3 || rep.Succeeded != 4 {
		t.Errorf("counts: %d ok, %d failed, %d skipped", rep.Succeeded, rep.Failed, rep.Skipped)
	}
	for _, r := range rep.Results {
		if r.Skipped() != errors.Is(r.Err, reconciler.ErrSkipped) || (r.Skipped() && r.Duration != 0) {
			t.Errorf("%s: skipped %v, duration %v", r.Action, r.Skipped(), r.Duration)
		}
	}
	if err := rep.Err(); !strings.HasPrefix(err.Error(), "2 of 9 actions failed, 3 not run; create network lan: no bridge; create claim default/data: disk full; create pod default/db: not run") {
		t.Errorf("Report.Err() = %q", err)
	}
}

// TestExecuteStages checks that every call of a stage returns before any
// call of the next stage starts, with actions running in parallel.
func TestExecuteStages(t *testing.T) {
	d, _ := reconciler.Expand(reconciler.LoadSite(t), reconciler.Host{Name: "node1"})
	lan := reconciler.Network{Name: "old-net", Hash: "x"}
	actual := reconciler.Actual{
		Pods:     []reconciler.ActualPod{reconciler.RunningPod(reconciler.TestPod("old-0", "h", reconciler.RestartAlways, "main")), reconciler.WithContainer(reconciler.RunningPod(d.Pods[3]), reconciler.ActualContainer{Name: "httpd", State: reconciler.Exited, ExitCode: 1})},
		Networks: []reconciler.ActualNetwork{{Name: lan.Name, Hash: lan.Hash}},
	}
	res, err := reconciler.Plan(d, actual, reconciler.PlanOptions{Now: reconciler.Now, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	stages := map[reconciler.Stage]bool{}
	for _, a := range res.Actions {
		stages[a.Stage] = true
	}
	if len(stages) != 5 {
		t.Fatalf("the plan covers %d stages, want all 5:\n%s", len(stages), reconciler.ActionStrings(res.Actions))
	}
	fake := reconcilertest.NewFake(actual)
	var mu sync.Mutex
	var events []string // "start STAGE" / "end STAGE"
	stageOf := func(method, subject string) reconciler.Stage {
		for _, a := range res.Actions {
			s := a.Subject
			name := s.Name
			if s.Namespace != "" {
				name = reconciler.JoinName(s.Namespace, s.Name)
			}
			if s.Container != "" {
				name += "/" + s.Container
			}
			if name == subject {
				return a.Stage
			}
		}
		t.Errorf("call %s %s matches no action", method, subject)
		return -1
	}
	fake.Hook = func(method, subject string) {
		mu.Lock()
		events = append(events, fmt.Sprint(stageOf(method, subject)))
		mu.Unlock()
	}
	var inDone atomic.Int32
	rep := reconciler.Execute(context.Background(), fake, res.Actions, reconciler.ExecOptions{OnDone: func(a reconciler.Action, _ error, _ time.Duration) {
		if inDone.Add(1) != 1 {
			t.Error("OnDone called concurrently")
		}
		mu.Lock()
		events = append(events, "done "+a.Stage.String())
		mu.Unlock()
		inDone.Add(-1)
	}})
	if !rep.OK() {
		t.Fatal(rep.Err())
	}
	// Every call of a stage starts after every action of the stages before
	// it is done: the stage names seen so far never go back.
	last := reconciler.Stage(-1)
	pending := map[reconciler.Stage]int{}
	for _, a := range res.Actions {
		pending[a.Stage]++
	}
	for _, ev := range events {
		if stage, ok := strings.CutPrefix(ev, "done "); ok {
			for s, n := range pending {
				if s.String() == stage {
					pending[s] = n - 1
				}
			}
			continue
		}
		var s reconciler.Stage
		fmt.Sscan(ev, (*int)(&s))
		for earlier := reconciler.Stage(0); earlier < s; earlier++ {
			if pending[earlier] > 0 {
				t.Fatalf("a call of stage %s started while %d actions of stage %s were pending; events %q", s, pending[earlier], earlier, events)
			}
		}
		if s < last {
			t.Fatalf("stage %s after stage %s; events %q", s, last, events)
		}
		last = s
	}
}

// TestExecuteCancel checks that once the context ends, actions not yet
// started are skipped, reported with the context's error, and that
// Execute returns.
func TestExecuteCancel(t *testing.T) {
	actions := createPods(10)
	lan := reconciler.Network{Name: "lan"}
	actions = append(actions, reconciler.Action{Kind: reconciler.Delete, Subject: reconciler.Subject{Type: reconciler.SubjectNetwork, Name: "x"}, Stage: reconciler.StageTeardown},
		reconciler.Action{Kind: reconciler.Create, Subject: reconciler.Subject{Type: reconciler.SubjectNetwork, Name: "lan"}, Stage: reconciler.StageSetup, Network: &lan})
	fake := reconcilertest.NewFake(reconciler.Actual{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake.Hook = func(method, subject string) {
		if subject == "default/p-2" {
			cancel()
		}
	}
	var calls atomic.Int32
	rep := reconciler.Execute(ctx, fake, actions, reconciler.ExecOptions{Parallelism: 1, OnDone: func(reconciler.Action, error, time.Duration) { calls.Add(1) }})
	if int(calls.Load()) != len(actions) {
		t.Errorf("OnDone called %d times for %d actions", calls.Load(), len(actions))
	}
	if rep.Succeeded != 3 || rep.Failed != 1 || rep.Skipped != 8 {
		t.Errorf("counts: %d ok, %d failed, %d skipped", rep.Succeeded, rep.Failed, rep.Skipped)
	}
	for _, r := range rep.Results[3:10] {
		if !r.Skipped() || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("%s: %v, want skipped for the canceled context", r.Action, r.Err)
		}
	}
	if !errors.Is(rep.Err(), context.Canceled) {
		t.Errorf("Report.Err() = %v does not wrap context.Canceled", rep.Err())
	}
}

// TestExecuteReplace checks that a replace removes the old pod before
// creating the new one, and stops when the removal fails.
func TestExecuteReplace(t *testing.T) {
	p := reconciler.TestPod("web-0", "new", reconciler.RestartAlways, "main")
	old := reconciler.RunningPod(reconciler.TestPod("web-0", "old", reconciler.RestartAlways, "main"))
	old.GracePeriod = 7 * time.Second
	res, err := reconciler.Plan(reconciler.Desired{Pods: []reconciler.Pod{p}}, reconciler.Actual{Pods: []reconciler.ActualPod{old}}, reconciler.PlanOptions{Now: reconciler.Now})
	if err != nil || len(res.Actions) != 1 || res.Actions[0].Kind != reconciler.Replace || res.Actions[0].Grace != 7*time.Second {
		t.Fatalf("plan %s, %v", reconciler.PlanText(res), err)
	}

	fake := reconcilertest.NewFake(reconciler.Actual{Pods: []reconciler.ActualPod{old}})
	if rep := reconciler.Execute(context.Background(), fake, res.Actions, reconciler.ExecOptions{}); !rep.OK() {
		t.Fatal(rep.Err())
	}
	if got, want := fake.Calls(), []reconcilertest.Call{{Method: "RemovePod", Subject: "default/web-0"}, {Method: "CreatePod", Subject: "default/web-0"}}; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}

	fake = reconcilertest.NewFake(reconciler.Actual{Pods: []reconciler.ActualPod{old}})
	fake.FailOn("RemovePod", 1, errors.New("stuck"))
	rep := reconciler.Execute(context.Background(), fake, res.Actions, reconciler.ExecOptions{})
	if err := rep.Results[0].Err; err == nil || err.Error() != "remove the old pod: stuck" {
		t.Errorf("error %v", err)
	}
	if got := fake.Calls(); len(got) != 1 {
		t.Errorf("calls after a failed removal: %v", got)
	}
}

// TestExecuteUnsupported checks that an action without its payload fails
// instead of calling the runtime with nothing.
func TestExecuteUnsupported(t *testing.T) {
	fake := reconcilertest.NewFake(reconciler.Actual{})
	rep := reconciler.Execute(context.Background(), fake, []reconciler.Action{{Kind: reconciler.Create, Subject: reconciler.PodSubject("default", "x")}}, reconciler.ExecOptions{})
	if rep.Failed != 1 || !strings.Contains(rep.Results[0].Err.Error(), "unsupported action") || len(fake.Calls()) != 0 {
		t.Errorf("report %+v, calls %v", rep, fake.Calls())
	}
	if rep := reconciler.Execute(context.Background(), fake, nil, reconciler.ExecOptions{}); !rep.OK() || rep.Err() != nil {
		t.Errorf("empty plan: %+v", rep)
	}
}

// TestFakeDrift checks the Fake's drift helpers and that its checks catch
// calls in the wrong order.
func TestFakeDrift(t *testing.T) {
	ctx := context.Background()
	p := reconciler.TestPod("web-0", "h", reconciler.RestartAlways, "main")
	p.Networks = []string{"lan"}
	fake := reconcilertest.NewFake(reconciler.Actual{})
	if err := fake.CreatePod(ctx, p); err == nil || !strings.Contains(err.Error(), "network lan does not exist") {
		t.Errorf("CreatePod before its network: %v", err)
	}
	if err := fake.EnsureNetwork(ctx, reconciler.Network{Name: "lan"}); err != nil {
		t.Fatal(err)
	}
	if err := fake.CreatePod(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := fake.RemoveNetwork(ctx, "lan"); err == nil {
		t.Error("RemoveNetwork succeeded while a pod uses the network")
	}
	other := p
	other.Hash = "other"
	if err := fake.CreatePod(ctx, other); err == nil {
		t.Error("CreatePod over a pod of another hash succeeded")
	}
	if err := fake.SetContainer("default", "web-0", reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: 1}); err != nil {
		t.Fatal(err)
	}
	if err := fake.BreakSandbox("default", "web-0"); err != nil {
		t.Fatal(err)
	}
	if err := fake.SetContainer("default", "nope", reconciler.ActualContainer{}); err == nil {
		t.Error("SetContainer of an unknown pod succeeded")
	}
	a, _ := fake.Observe(ctx)
	res, err := reconciler.Plan(reconciler.Desired{Pods: []reconciler.Pod{p}, Networks: []reconciler.Network{{Name: "lan"}}}, a, reconciler.PlanOptions{Now: reconciler.Now})
	if err != nil || reconciler.PlanText(res) != "-/+ replace pod default/web-0 (sandbox gone)\n" {
		t.Errorf("plan after drift: %s %v", reconciler.PlanText(res), err)
	}
	if err := fake.RestartContainer(ctx, p, "nope"); err == nil {
		t.Error("RestartContainer of an unknown container succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Error("FailOn accepted an unknown method")
		}
	}()
	fake.FailOn("Frobnicate", 1, nil)
}

// TestExecuteCancelWhileSlotsBusy is the regression test of a deadlock:
// the context ends while every slot is taken by a running action; the
// executor must skip the rest without stealing the running actions' slots.
func TestExecuteCancelWhileSlotsBusy(t *testing.T) {
	actions := createPods(5)
	fake := reconcilertest.NewFake(reconciler.Actual{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{}, len(actions))
	release := make(chan struct{})
	fake.Hook = func(string, string) {
		started <- struct{}{}
		<-release
	}
	done := make(chan reconciler.Report)
	go func() { done <- reconciler.Execute(ctx, fake, actions, reconciler.ExecOptions{Parallelism: 2}) }()
	<-started
	<-started // both slots busy; the executor waits for one with p-2
	cancel()
	var rep reconciler.Report
	select {
	case rep = <-done:
		t.Fatal("Execute returned while actions were running")
	case <-time.After(10 * time.Millisecond):
	}
	close(release)
	select {
	case rep = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Execute did not return after the running actions did")
	}
	if rep.Failed != 2 || rep.Skipped != 3 {
		t.Errorf("counts: %d ok, %d failed, %d skipped", rep.Succeeded, rep.Failed, rep.Skipped)
	}
}
