package agent

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kelpie-dev/kelpie/internal/clock/clocktest"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
	"github.com/kelpie-dev/kelpie/source"
)

// TestNewCommitApplies: the head at start is applied, recorded in state and
// metrics; a new commit announced by a trigger is applied next.
func TestNewCommitApplies(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 2, "busybox")})
	h.start()
	s := h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	if got, want := h.podNames(), []string{"agenttest/web-0", "agenttest/web-1"}; !slices.Equal(got, want) {
		t.Fatalf("pods after v1: %v, want %v", got, want)
	}
	if s.Pending != nil || s.LastError != nil || s.LastSync.Result != resultOK || s.LastSync.Reason != "start" || s.LastSync.Actions != 2 || s.LastSync.Source != "fake" {
		t.Fatalf("status after v1: pending %+v, lastError %+v, lastSync %+v", s.Pending, s.LastError, s.LastSync)
	}
	if len(s.Pods) != 2 || s.Pods[0].State != "Running" || s.Pods[0].Ready != "1/1" {
		t.Fatalf("status pods: %+v", s.Pods)
	}
	st, err := LoadState(h.cfg.StatePath())
	if err != nil || st.Applied == nil || st.Applied.Hash != v1.Hash || st.Applied.Subject != "v1" {
		t.Fatalf("state.json after v1: %+v, %v", st, err)
	}

	v2 := h.src.push("v2: scale to 3", map[string]string{"app.yaml": deployment("web", 3, "busybox")})
	seq := h.seq()
	h.agent.Trigger("test")
	s = h.waitSync(seq)
	if s.Applied == nil || s.Applied.Hash != v2.Hash || s.LastSync.Reason != "test" || s.LastSync.Actions != 1 {
		t.Fatalf("after v2: applied %+v, lastSync %+v", s.Applied, s.LastSync)
	}
	if got := h.podNames(); len(got) != 3 {
		t.Fatalf("pods after v2: %v", got)
	}
	if got := h.src.applied[len(h.src.applied)-1]; got != v1.Hash {
		t.Errorf("Fetch got applied %q, want v1 %s", got, v1.Hash)
	}
	if n := testutil.ToFloat64(h.agent.metrics.applied.WithLabelValues(v2.Hash)); n != 1 {
		t.Errorf("kelpie_applied_commit_info{commit=v2} = %v", n)
	}
	if n := testutil.CollectAndCount(h.agent.metrics.applied); n != 1 {
		t.Errorf("kelpie_applied_commit_info has %d series, want 1", n)
	}
	if n := testutil.ToFloat64(h.agent.metrics.syncs.WithLabelValues(resultOK)); n != 2 {
		t.Errorf("kelpie_sync_total{result=ok} = %v, want 2", n)
	}
}

// TestBrokenCommitRefused: an invalid commit changes nothing on the host;
// status shows file:line; an unchanged head stalls (no retry, counted once);
// a fixed commit applies.
func TestBrokenCommitRefused(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 2, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	calls := len(h.rt.Calls())

	bad := h.src.push("broken", map[string]string{"app.yaml": brokenManifest})
	seq := h.seq()
	h.agent.Trigger("test")
	s := h.waitSync(seq)
	if s.LastSync.Result != resultRefused {
		t.Fatalf("lastSync %+v, want refused", s.LastSync)
	}
	if s.Applied.Hash != v1.Hash {
		t.Fatalf("applied %s, want v1", s.Applied.Short())
	}
	if s.Pending == nil || s.Pending.Hash != bad.Hash || s.Pending.Reason != KindInvalid {
		t.Fatalf("pending %+v, want the broken commit, invalid", s.Pending)
	}
	le := s.LastError
	if le == nil || le.Kind != KindInvalid || le.Commit != bad.Hash || len(le.Errors) == 0 {
		t.Fatalf("lastError %+v", le)
	}
	if e := le.Errors[0]; e.File != "app.yaml" || e.Line != 7 || e.Field != "spec.replicas" {
		t.Fatalf("manifest error %+v, want app.yaml:7 spec.replicas", e)
	}
	if m := h.mutations(calls); len(m) != 0 {
		t.Fatalf("a broken commit changed the host: %v", m)
	}
	if got := h.podNames(); len(got) != 2 {
		t.Fatalf("pods: %v", got)
	}

	// The same head again: stalls, not loaded or counted again.
	seq = h.seq()
	h.agent.Trigger("test")
	s = h.waitSync(seq)
	if s.LastSync.Result != resultRefused || s.LastError == nil || s.LastError.Time != le.Time {
		t.Fatalf("second sync of the broken head: %+v, %+v", s.LastSync, s.LastError)
	}
	if n := testutil.ToFloat64(h.agent.metrics.errors.WithLabelValues(string(KindInvalid))); n != 1 {
		t.Errorf("kelpie_errors_total{kind=invalid} = %v, want 1", n)
	}
	st, err := LoadState(h.cfg.StatePath())
	if err != nil || st.Pending == nil || st.Pending.Hash != bad.Hash || st.LastError == nil || len(st.LastError.Errors) == 0 {
		t.Fatalf("state.json: %+v, %v", st, err)
	}

	fixed := h.src.push("fixed", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	seq = h.seq()
	h.agent.Trigger("test")
	s = h.waitSync(seq)
	if s.Applied.Hash != fixed.Hash || s.Pending != nil || s.LastError != nil || s.LastSync.Result != resultOK {
		t.Fatalf("after the fix: applied %s, pending %+v, lastError %+v", s.Applied.Short(), s.Pending, s.LastError)
	}
	if got := h.podNames(); !slices.Equal(got, []string{"agenttest/web-0"}) {
		t.Fatalf("pods after the fix: %v", got)
	}
}

// TestNewerGoodCommitSupersedesFailingApply: the failing commit is replaced
// by a good one, which applies.
func TestNewerGoodCommitSupersedesFailingApply(t *testing.T) {
	h := newHarness(t)
	h.cfg.RetryMin, h.cfg.RetryMax = time.Hour, time.Hour // no retry happens in this test
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })

	h.rt.FailOn("CreatePod", 2, errors.New("image not found")) // db-0's create
	v2 := h.src.push("v2: add db", map[string]string{"app.yaml": deployment("web", 1, "busybox"), "db.yaml": deployment("db", 1, "missing:image")})
	seq := h.seq()
	h.agent.Trigger("test")
	s := h.waitSync(seq)
	if s.Pending == nil || s.Pending.Hash != v2.Hash || s.LastSync.Result != resultFailed {
		t.Fatalf("v2: pending %+v, lastSync %+v", s.Pending, s.LastSync)
	}

	v3 := h.src.push("v3: db fixed", map[string]string{"app.yaml": deployment("web", 1, "busybox"), "db.yaml": deployment("db", 1, "busybox")})
	seq = h.seq()
	h.agent.Trigger("test")
	s = h.waitSync(seq)
	if s.Applied.Hash != v3.Hash || s.Pending != nil || s.LastError != nil || s.LastSync.Result != resultOK {
		t.Fatalf("v3: applied %s, pending %+v, lastError %+v, lastSync %+v", s.Applied.Short(), s.Pending, s.LastError, s.LastSync)
	}
	if got := h.podNames(); !slices.Equal(got, []string{"agenttest/db-0", "agenttest/web-0"}) {
		t.Fatalf("pods: %v", got)
	}
}

// TestNewerGoodCommitSupersedesInvalid: a broken head is passed over as
// soon as a good commit follows it.
func TestNewerGoodCommitSupersedesInvalid(t *testing.T) {
	h := newHarness(t)
	h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.src.push("broken", map[string]string{"app.yaml": brokenManifest})
	h.start()
	s := h.waitFor("broken refused", func(s Status) bool { return s.LastError != nil && s.LastError.Kind == KindInvalid })
	if s.Applied != nil || len(h.mutations(0)) != 0 {
		t.Fatalf("a broken first commit applied something: %+v, %v", s.Applied, h.mutations(0))
	}
	good := h.src.push("good", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.agent.Trigger("test")
	h.waitFor("good applied", func(s Status) bool {
		return s.Applied != nil && s.Applied.Hash == good.Hash && s.LastError == nil && s.Pending == nil
	})
}

// TestTransientRetryWithBackoff: a failed apply is retried after RetryMin,
// then converges.
func TestTransientRetryWithBackoff(t *testing.T) {
	h := newHarness(t)
	h.cfg.RetryMin = 3 * time.Second
	h.rt.FailOn("CreatePod", 1, errors.New("containerd restarting"))
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.start()
	s := h.waitFor("failed apply", func(s Status) bool { return s.LastSync != nil })
	if s.LastSync.Result != resultFailed || s.Applied != nil || s.Pending == nil || s.Pending.Hash != v1.Hash {
		t.Fatalf("first sync: %+v, applied %+v, pending %+v", s.LastSync, s.Applied, s.Pending)
	}
	h.clock.Advance(3 * time.Second)
	s = h.waitFor("retry applied", func(s Status) bool { return s.Applied != nil })
	if s.Applied.Hash != v1.Hash || s.LastSync.Reason != "retry" || s.LastError != nil || s.Pending != nil {
		t.Fatalf("after retry: %+v, %+v, %+v", s.Applied, s.LastSync, s.LastError)
	}
}

// TestRefusedFetch: a head that is not a fast-forward, or untrusted, is
// reported and applies nothing; drift repair of the running commit goes on.
func TestRefusedFetch(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind ErrorKind
	}{
		{fmt.Errorf("fetch main: file:///fake: %w: head abc does not descend from def", source.ErrNotFastForward), KindNotFastForward},
		{fmt.Errorf("fetch main: file:///fake: commit abc: %w: unsigned", source.ErrUntrusted), KindUntrusted},
		{errors.New("fetch main: file:///fake: connection refused"), KindFetch},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			h := newHarness(t)
			v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
			h.start()
			h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
			calls := len(h.rt.Calls())

			h.src.push("v2", map[string]string{"app.yaml": deployment("web", 3, "busybox")})
			h.src.setErr(tc.err)
			seq := h.seq()
			h.agent.Trigger("test")
			s := h.waitSync(seq)
			want := resultRefused
			if tc.kind == KindFetch {
				want = resultFailed
			}
			if s.LastSync.Result != want || s.LastError == nil || s.LastError.Kind != tc.kind || s.LastError.Message != tc.err.Error() {
				t.Fatalf("lastSync %+v, lastError %+v", s.LastSync, s.LastError)
			}
			if s.Applied.Hash != v1.Hash {
				t.Fatalf("applied %s", s.Applied.Short())
			}
			if m := h.mutations(calls); len(m) != 0 {
				t.Fatalf("a refused fetch changed the host: %v", m)
			}
			if n := testutil.ToFloat64(h.agent.metrics.errors.WithLabelValues(string(tc.kind))); n != 1 {
				t.Errorf("kelpie_errors_total{kind=%s} = %v", tc.kind, n)
			}
		})
	}
}

// TestEmptyCommitRefused: a commit that gives the host no pods while it
// runs some is refused (AllowEmpty off); pods keep running.
func TestEmptyCommitRefused(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 2, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	calls := len(h.rt.Calls())
	empty := h.src.push("remove everything", map[string]string{"README.md": "nothing here\n"})
	seq := h.seq()
	h.agent.Trigger("test")
	s := h.waitSync(seq)
	if s.LastSync.Result != resultRefused || s.LastError == nil || s.LastError.Kind != KindEmpty || s.Pending == nil || s.Pending.Hash != empty.Hash {
		t.Fatalf("lastSync %+v, lastError %+v, pending %+v", s.LastSync, s.LastError, s.Pending)
	}
	if m := h.mutations(calls); len(m) != 0 || len(h.podNames()) != 2 {
		t.Fatalf("an empty commit changed the host: %v", m)
	}
}

// TestRestartPlansNothing: a new agent over the same state dir and host
// re-reads the applied commit from the cache and changes nothing, even
// while the repository cannot be reached.
func TestRestartPlansNothing(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 2, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	h.stop()
	calls := len(h.rt.Calls())
	if got := h.podNames(); len(got) != 2 {
		t.Fatalf("stopping the agent removed pods: %v", got)
	}

	h.src.setErr(errors.New("network unreachable"))
	h.start()
	s := h.waitSync(0)
	if s.Applied == nil || s.Applied.Hash != v1.Hash || s.LastError == nil || s.LastError.Kind != KindFetch {
		t.Fatalf("after restart: applied %+v, lastError %+v", s.Applied, s.LastError)
	}
	if !slices.Contains(h.src.asked, v1.Hash) {
		t.Fatalf("the applied commit was not re-read from the cache: %v", h.src.asked)
	}
	if len(s.Pods) != 2 {
		t.Fatalf("status pods after restart: %+v", s.Pods)
	}
	if m := h.mutations(calls); len(m) != 0 {
		t.Fatalf("restart changed the host: %v", m)
	}

	// Back online with the same head: still nothing to do, error cleared.
	h.src.setErr(nil)
	seq := h.seq()
	h.agent.Trigger("test")
	s = h.waitSync(seq)
	if s.LastError != nil || s.LastSync.Result != resultOK || s.LastSync.Actions != 0 {
		t.Fatalf("online again: %+v, %+v", s.LastSync, s.LastError)
	}
	if m := h.mutations(calls); len(m) != 0 {
		t.Fatalf("restart changed the host: %v", m)
	}
}

// TestDriftRepairOnEvent: a runtime event brings a drift check soon; an
// exited container is restarted at once the first time, and after its
// back-off (the planner's NextCheck) when it crashes again, with no sync in
// between.
func TestDriftRepairOnEvent(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	seq := h.seq()
	calls := len(h.rt.Calls())
	waitCalls := func(what string, cond func([]reconcilertest.Call) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond(h.rt.Calls()[calls:]) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: calls %v", what, h.rt.Calls()[calls:])
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	restarted := func(c []reconcilertest.Call) bool {
		return slices.ContainsFunc(c, func(c reconcilertest.Call) bool { return c.Method == "RestartContainer" })
	}

	// The first crash: restarted at once, on the drift check the event brings.
	if err := h.rt.SetContainer("agenttest", "web-0", reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: 137, FinishedAt: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	before := h.clock.Created()
	h.events <- struct{}{}
	waitTimer(t, h.clock, before) // the event makes the loop check EventDelay later
	h.clock.Advance(DefaultEventDelay)
	waitCalls("the first restart, at once", restarted)
	h.waitFor("running again", func(s Status) bool {
		return len(s.Pods) == 1 && s.Pods[0].State == "Running" && s.Pods[0].Restarts == 1 && len(s.Waiting) == 0
	})

	// It crashes again: now it waits for the back-off.
	calls = len(h.rt.Calls())
	if err := h.rt.SetContainer("agenttest", "web-0", reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: 137, Restarts: 1, Streak: 1, FinishedAt: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	before = h.clock.Created()
	h.events <- struct{}{}
	waitTimer(t, h.clock, before)
	h.clock.Advance(DefaultEventDelay)
	waitCalls("a drift check", func(c []reconcilertest.Call) bool { return len(c) > 0 })
	s := h.waitFor("the wait in status", func(s Status) bool { return len(s.Waiting) == 1 })
	if !strings.Contains(s.Waiting[0], "web-0/main") || len(h.mutations(calls)) != 0 {
		t.Fatalf("waiting %v, mutations %v", s.Waiting, h.mutations(calls))
	}
	// Back-off (10 s after the exit) elapses: the container is restarted.
	waitTimer(t, h.clock, before+1)
	h.clock.Advance(reconciler.BackoffInitial)
	waitCalls("the second restart", restarted)
	h.waitFor("running again", func(s Status) bool {
		return len(s.Pods) == 1 && s.Pods[0].State == "Running" && s.Pods[0].Restarts == 2 && len(s.Waiting) == 0
	})
	if h.seq() != seq {
		t.Fatalf("drift repair ran a sync")
	}
}

// waitTimer waits until the loop made more than n timers: it handled
// what came before and waits again.
func waitTimer(t *testing.T, c *clocktest.Clock, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Created() <= n {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the loop to wait again")
		}
		time.Sleep(time.Millisecond)
	}
}
