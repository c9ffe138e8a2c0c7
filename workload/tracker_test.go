package workload

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// spec returns a probe spec with the given timing in seconds.
func spec(delay, period, success, failure int) *ProbeSpec {
	return &ProbeSpec{
		InitialDelay: time.Duration(delay) * time.Second, Period: time.Duration(period) * time.Second,
		Timeout: time.Second, SuccessThreshold: success, FailureThreshold: failure,
	}
}

// sec returns t0 plus n seconds.
func sec(n int) time.Time { return at(time.Duration(n) * time.Second) }

// step is one result fed to a Tracker and what must follow.
type step struct {
	kind ProbeKind
	ok   bool
	at   int // seconds after t0
	// events are the transitions Observe must return.
	events []Event
	// ready and started are the state after the result.
	ready, started bool
	// kill is the kind of the kill asked for so far ("" for none).
	kill ProbeKind
}

func TestTracker(t *testing.T) {
	grace := 5 * time.Second
	withGrace := spec(0, 10, 1, 2)
	withGrace.TerminationGrace = &grace
	for _, tc := range []struct {
		name   string
		probes ContainerProbes
		// ready and started are the state before any result.
		ready, started bool
		// due maps each kind to the second its first probe is due; -1 for none.
		due   map[ProbeKind]int
		steps []step
	}{
		{name: "no probes: ready once running",
			ready: true, started: true,
			due: map[ProbeKind]int{Liveness: -1, Readiness: -1, Startup: -1}},
		{name: "readiness: not ready until the first success, then by thresholds",
			probes:  ContainerProbes{Readiness: spec(5, 10, 1, 3)},
			started: true,
			due:     map[ProbeKind]int{Readiness: 5, Liveness: -1, Startup: -1},
			steps: []step{
				{kind: Readiness, ok: true, at: 5, events: []Event{EventReady}, ready: true, started: true},
				{kind: Readiness, ok: false, at: 15, ready: true, started: true},
				{kind: Readiness, ok: false, at: 25, ready: true, started: true},
				{kind: Readiness, ok: false, at: 35, events: []Event{EventNotReady}, started: true},
				{kind: Readiness, ok: false, at: 45, started: true},
				{kind: Readiness, ok: true, at: 55, events: []Event{EventReady}, ready: true, started: true},
			}},
		{name: "readiness successThreshold 2",
			probes:  ContainerProbes{Readiness: spec(0, 1, 2, 1)},
			started: true,
			steps: []step{
				{kind: Readiness, ok: true, at: 0, started: true},
				{kind: Readiness, ok: false, at: 1, started: true},
				{kind: Readiness, ok: true, at: 2, started: true},
				{kind: Readiness, ok: true, at: 3, events: []Event{EventReady}, ready: true, started: true},
				{kind: Readiness, ok: false, at: 4, events: []Event{EventNotReady}, started: true},
			}},
		{name: "failures that never reach the threshold change nothing",
			probes:  ContainerProbes{Liveness: spec(0, 1, 1, 3), Readiness: spec(0, 1, 1, 3)},
			started: true,
			steps: []step{
				{kind: Readiness, ok: true, at: 0, events: []Event{EventReady}, ready: true, started: true},
				{kind: Liveness, ok: false, at: 1, ready: true, started: true},
				{kind: Liveness, ok: false, at: 2, ready: true, started: true},
				{kind: Liveness, ok: true, at: 3, ready: true, started: true},
				{kind: Liveness, ok: false, at: 4, ready: true, started: true},
				{kind: Liveness, ok: false, at: 5, ready: true, started: true},
				{kind: Readiness, ok: false, at: 5, ready: true, started: true},
				{kind: Readiness, ok: false, at: 6, ready: true, started: true},
				{kind: Readiness, ok: true, at: 7, ready: true, started: true},
			}},
		{name: "liveness failure kills and takes the container out of service",
			probes: ContainerProbes{Liveness: spec(3, 10, 1, 3)},
			ready:  true, started: true,
			due: map[ProbeKind]int{Liveness: 3},
			steps: []step{
				{kind: Liveness, ok: false, at: 3, ready: true, started: true},
				{kind: Liveness, ok: false, at: 13, ready: true, started: true},
				{kind: Liveness, ok: false, at: 23, events: []Event{EventKill, EventNotReady}, started: true, kill: Liveness},
				// After the kill every result is ignored.
				{kind: Liveness, ok: true, at: 33, started: true, kill: Liveness},
			}},
		{name: "startup gates liveness and readiness",
			probes: ContainerProbes{Startup: spec(0, 1, 1, 30), Liveness: spec(20, 10, 1, 3), Readiness: spec(0, 5, 1, 3)},
			due:    map[ProbeKind]int{Startup: 0, Liveness: -1, Readiness: -1},
			steps: []step{
				{kind: Startup, ok: false, at: 0},
				{kind: Liveness, ok: false, at: 1}, // gated: ignored
				{kind: Startup, ok: false, at: 1},
				{kind: Startup, ok: true, at: 7, events: []Event{EventStarted}, started: true},
				{kind: Startup, ok: false, at: 8, started: true}, // done: ignored
				{kind: Readiness, ok: true, at: 7, events: []Event{EventReady}, ready: true, started: true},
			}},
		{name: "startup without readiness: ready once started",
			probes: ContainerProbes{Startup: spec(2, 1, 1, 3)},
			due:    map[ProbeKind]int{Startup: 2},
			steps: []step{
				{kind: Startup, ok: true, at: 2, events: []Event{EventStarted, EventReady}, ready: true, started: true},
			}},
		{name: "startup failure kills",
			probes: ContainerProbes{Startup: withGrace, Liveness: spec(0, 1, 1, 1)},
			steps: []step{
				{kind: Startup, ok: false, at: 0},
				{kind: Startup, ok: false, at: 10, events: []Event{EventKill}, kill: Startup},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker("web", tc.probes, t0)
			if tr.Ready() != tc.ready || tr.Started() != tc.started {
				t.Fatalf("at start: ready %v started %v, want %v %v", tr.Ready(), tr.Started(), tc.ready, tc.started)
			}
			for kind, s := range tc.due {
				d, ok := tr.Due(kind)
				if ok != (s >= 0) || ok && !d.Equal(sec(s)) {
					t.Errorf("%s due %v %s, want %d", kind, ok, d, s)
				}
			}
			for i, st := range tc.steps {
				got := tr.Observe(Result{Kind: st.kind, OK: st.ok, At: sec(st.at), Output: "out"})
				var events []Event
				for _, g := range got {
					events = append(events, g.Event)
					if g.Container != "web" || g.Kind != st.kind || !g.At.Equal(sec(st.at)) {
						t.Errorf("step %d: transition %+v", i, g)
					}
				}
				if !slices.Equal(events, st.events) {
					t.Errorf("step %d (%s %v at %d): events %v, want %v", i, st.kind, st.ok, st.at, events, st.events)
				}
				if tr.Ready() != st.ready || tr.Started() != st.started {
					t.Errorf("step %d: ready %v started %v, want %v %v", i, tr.Ready(), tr.Started(), st.ready, st.started)
				}
				k, killed := tr.Kill()
				if killed != (st.kill != "") || k.Kind != st.kill {
					t.Errorf("step %d: kill %v %+v, want %q", i, killed, k, st.kill)
				}
			}
		})
	}
}

func TestTrackerDue(t *testing.T) {
	tr := NewTracker("web", ContainerProbes{Startup: spec(0, 2, 1, 5), Liveness: spec(10, 10, 1, 3), Readiness: spec(0, 5, 1, 3)}, t0)
	if k, d, ok := tr.Next(); !ok || k != Startup || !d.Equal(t0) {
		t.Fatalf("next %s %s %v, want startup at t0", k, d, ok)
	}
	tr.Observe(Result{Kind: Startup, OK: false, At: sec(0)})
	if k, d, _ := tr.Next(); k != Startup || !d.Equal(sec(2)) {
		t.Fatalf("next %s %s, want startup at +2s", k, d)
	}
	tr.Observe(Result{Kind: Startup, OK: true, At: sec(2)})
	// Readiness has no delay left: due at once; liveness at its delay.
	if d, _ := tr.Due(Readiness); !d.Equal(sec(2)) {
		t.Errorf("readiness due %s, want +2s", d)
	}
	if d, _ := tr.Due(Liveness); !d.Equal(sec(10)) {
		t.Errorf("liveness due %s, want +10s", d)
	}
	if _, ok := tr.Due(Startup); ok {
		t.Errorf("startup due after it passed")
	}
	tr.Observe(Result{Kind: Readiness, OK: true, At: sec(3)})
	if d, _ := tr.Due(Readiness); !d.Equal(sec(8)) {
		t.Errorf("readiness due %s, want +8s (period after the last start)", d)
	}
	// A stale result from before the run is ignored.
	if got := tr.Observe(Result{Kind: Readiness, OK: false, At: t0.Add(-time.Second)}); got != nil {
		t.Errorf("stale result: %v", got)
	}
	if d, _ := tr.Due(Readiness); !d.Equal(sec(8)) {
		t.Errorf("stale result moved readiness to %s", d)
	}
	// Startup passed after the liveness delay: liveness at once.
	tr = NewTracker("web", ContainerProbes{Startup: spec(0, 2, 1, 5), Liveness: spec(10, 10, 1, 3)}, t0)
	tr.Observe(Result{Kind: Startup, OK: true, At: sec(30)})
	if d, _ := tr.Due(Liveness); !d.Equal(sec(30)) {
		t.Errorf("liveness due %s, want +30s", d)
	}
}

func TestKillGrace(t *testing.T) {
	grace := 3 * time.Second
	for _, tc := range []struct {
		name  string
		grace *time.Duration
		want  time.Duration
	}{
		{"pod grace", nil, 30 * time.Second},
		{"probe grace", &grace, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(0, 1, 1, 1)
			s.TerminationGrace = tc.grace
			tr := NewTracker("web", ContainerProbes{Liveness: s}, t0)
			tr.Observe(Result{Kind: Liveness, OK: false, At: sec(1), Output: "HTTP 503"})
			k, ok := tr.Kill()
			if !ok {
				t.Fatal("no kill")
			}
			if got := k.GraceOr(30 * time.Second); got != tc.want {
				t.Errorf("grace %s, want %s", got, tc.want)
			}
			if k.Reason != "liveness probe failed 1 time: HTTP 503" {
				t.Errorf("reason %q", k.Reason)
			}
			if _, _, due := tr.Next(); due {
				t.Error("a probe is due after the kill")
			}
		})
	}
}

func TestTransitionString(t *testing.T) {
	for _, tc := range []struct {
		tr   Transition
		want string
	}{
		{Transition{Container: "web", Kind: Readiness, Event: EventNotReady, Run: 3, Output: "HTTP 503"},
			"container web: NotReady (readiness probe failed 3 times: HTTP 503)"},
		{Transition{Container: "web", Kind: Readiness, Event: EventReady, Run: 1},
			"container web: Ready (readiness probe passed)"},
		{Transition{Container: "db", Kind: Startup, Event: EventStarted, Run: 1, Output: "ok"},
			"container db: Started (startup probe passed: ok)"},
		{Transition{Container: "db", Kind: Liveness, Event: EventKill, Run: 3, Output: "timeout after 1s"},
			"container db: Kill (liveness probe failed 3 times: timeout after 1s)"},
	} {
		if got := tc.tr.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestProbeSpecOf(t *testing.T) {
	g := int64(7)
	got := ProbeSpecOf(&corev1.Probe{InitialDelaySeconds: 4, TerminationGracePeriodSeconds: &g})
	want := ProbeSpec{InitialDelay: 4 * time.Second, Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}
	if got.TerminationGrace == nil || *got.TerminationGrace != 7*time.Second {
		t.Errorf("grace %v", got.TerminationGrace)
	}
	got.TerminationGrace = nil
	if *got != want {
		t.Errorf("got %+v, want %+v", *got, want)
	}
	if ProbeSpecOf(nil) != nil {
		t.Error("nil probe resolved")
	}
	c := ContainerProbesOf(&corev1.Container{ReadinessProbe: &corev1.Probe{PeriodSeconds: 2, SuccessThreshold: 2, FailureThreshold: 5, TimeoutSeconds: 3}})
	if c.Liveness != nil || c.Startup != nil || c.Readiness == nil ||
		*c.Readiness != (ProbeSpec{Period: 2 * time.Second, Timeout: 3 * time.Second, SuccessThreshold: 2, FailureThreshold: 5}) {
		t.Errorf("container probes %+v", c)
	}
}

func TestPodReady(t *testing.T) {
	ready := NewTracker("a", ContainerProbes{}, t0) // ready since t0
	late := NewTracker("b", ContainerProbes{Readiness: spec(0, 1, 1, 1)}, t0)
	late.Observe(Result{Kind: Readiness, OK: true, At: sec(5)})
	notReady := NewTracker("c", ContainerProbes{Readiness: spec(0, 1, 1, 1)}, t0)
	for _, tc := range []struct {
		name  string
		cs    []*Tracker
		ready bool
		since time.Time
	}{
		{"no containers", nil, false, time.Time{}},
		{"one ready", []*Tracker{ready}, true, t0},
		{"latest since", []*Tracker{ready, late}, true, sec(5)},
		{"one not ready", []*Tracker{ready, notReady}, false, time.Time{}},
		{"one not running", []*Tracker{ready, nil}, false, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since, ok := PodReadySince(tc.cs)
			if ok != tc.ready || !since.Equal(tc.since) || PodReady(tc.cs) != tc.ready {
				t.Errorf("got %v %s, want %v %s", ok, since, tc.ready, tc.since)
			}
		})
	}
	for _, tc := range []struct {
		ready    bool
		minReady time.Duration
		now      time.Time
		want     bool
	}{
		{true, 0, sec(0), true},
		{true, 10 * time.Second, sec(9), false},
		{true, 10 * time.Second, sec(10), true},
		{false, 0, sec(100), false},
	} {
		if got := Available(t0, tc.ready, tc.minReady, tc.now); got != tc.want {
			t.Errorf("Available(ready %v, minReady %s, now %s) = %v", tc.ready, tc.minReady, tc.now, got)
		}
	}
}

// TestTrackerProperty feeds random results to a readiness probe and
// compares the Ready condition with a naive model: Ready flips to true
// after SuccessThreshold successes in a row and to false after
// FailureThreshold failures in a row; one transition per flip.
func TestTrackerProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		succ, fail := 1+rng.IntN(3), 1+rng.IntN(4)
		tr := NewTracker("web", ContainerProbes{Readiness: spec(0, 1, succ, fail)}, t0)
		ready, flips := false, 0
		var history []bool
		for i := range 60 {
			ok := rng.IntN(3) > 0
			history = append(history, ok)
			run := 0
			for j := len(history) - 1; j >= 0 && history[j] == ok; j-- {
				run++
			}
			if ok && run >= succ && !ready || !ok && run >= fail && ready {
				ready = ok
				flips++
			}
			got := tr.Observe(Result{Kind: Readiness, OK: ok, At: sec(i)})
			if tr.Ready() != ready {
				t.Fatalf("trial %d (thresholds %d/%d) after %v: ready %v, want %v", trial, succ, fail, history, tr.Ready(), ready)
			}
			flips -= len(got)
			if flips != 0 {
				t.Fatalf("trial %d after %v: transitions %v", trial, history, fmt.Sprint(got))
			}
		}
	}
}
