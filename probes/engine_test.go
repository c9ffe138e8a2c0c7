package probes

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/clock/clocktest"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// fakeProber answers probes from a script: each probe's Exec command names
// its kind ("liveness", "readiness", "startup"), and script[container+"/"+kind]
// is the results to give, in order, the last one repeated (success when
// there is none).
type fakeProber struct {
	mu     sync.Mutex
	script map[string][]bool
	calls  map[string]int
	kills  []string
}

func newFakeProber(script map[string][]bool) *fakeProber {
	return &fakeProber{script: script, calls: map[string]int{}}
}

func (f *fakeProber) Probe(ctx context.Context, pod reconciler.ActualPod, container string, p reconciler.Probe) (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := container + "/" + p.Exec[0]
	n := f.calls[key]
	f.calls[key]++
	s := f.script[key]
	switch {
	case len(s) == 0:
		return true, ""
	case n >= len(s):
		n = len(s) - 1
	}
	if s[n] {
		return true, ""
	}
	return false, "HTTP 503"
}

func (f *fakeProber) KillContainer(ctx context.Context, namespace, pod, container string, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kills = append(f.kills, fmt.Sprintf("%s/%s/%s grace %s", namespace, pod, container, grace))
	return nil
}

// count returns how many probes of container/kind were made.
func (f *fakeProber) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

func (f *fakeProber) killed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.kills...)
}

// probe returns a probe of kind with a period of 10 s and thresholds 1 and 3.
func probe(kind string) *reconciler.Probe {
	return &reconciler.Probe{Exec: []string{kind}, Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}
}

// rig is an engine over a fake prober and a fake clock, with one pod.
type rig struct {
	t       *testing.T
	e       *Engine
	prober  *fakeProber
	clock   *clocktest.Clock
	log     *bytes.Buffer
	logMu   *sync.Mutex
	changes chan string
	desired []reconciler.Pod
	actual  reconciler.Actual
}

// lockedWriter serialises writes to a buffer.
type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// newRig starts an engine for pod default/web of container web with probes.
func newRig(t *testing.T, probes reconciler.Probes, script map[string][]bool) *rig {
	t.Helper()
	r := &rig{t: t, prober: newFakeProber(script), clock: clocktest.New(), log: &bytes.Buffer{}, logMu: &sync.Mutex{}, changes: make(chan string, 16)}
	e, err := New(Config{
		Prober: r.prober, Clock: r.clock,
		Log:      slog.New(slog.NewTextHandler(lockedWriter{r.logMu, r.log}, &slog.HandlerOptions{})),
		OnChange: func(reason string) { r.changes <- reason },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.e = e
	grace := 7 * time.Second
	r.desired = []reconciler.Pod{{Namespace: "default", Name: "web", Hash: "h1", TerminationGracePeriod: grace,
		Containers: []reconciler.Container{{Name: "web", Probes: probes}}}}
	r.actual = reconciler.Actual{Pods: []reconciler.ActualPod{{Namespace: "default", Name: "web", Hash: "h1", SandboxReady: true, IP: "10.244.0.2",
		Containers: []reconciler.ActualContainer{{Name: "web", State: reconciler.Running, StartedAt: r.clock.Now()}}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// observe feeds the rig's actual state and returns the pod as decorated.
func (r *rig) observe() reconciler.ActualPod {
	return r.e.Observe(r.desired, r.actual).Pods[0]
}

// settle waits until key was probed n times and the results were fed.
func (r *rig) settle(key string, n int) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.e.mu.Lock()
		idle := r.e.inFlight == 0
		r.e.mu.Unlock()
		if idle && r.prober.count(key) >= n {
			if got := r.prober.count(key); got != n {
				r.t.Fatalf("%s probed %d times, want %d", key, got, n)
			}
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s probed %d times, want %d", key, r.prober.count(key), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// advance moves the clock on by d.
func (r *rig) advance(d time.Duration) { r.clock.Advance(d) }

// logged returns the log so far.
func (r *rig) logged() string {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.log.String()
}

// TestLivenessKill: a liveness probe that fails three times in a row kills
// the container once, with the probe's termination grace, and asks for a
// plan; no probe is made after the kill.
func TestLivenessKill(t *testing.T) {
	grace := 3 * time.Second
	live := probe("liveness")
	live.TerminationGrace = &grace
	r := newRig(t, reconciler.Probes{Liveness: live}, map[string][]bool{"web/liveness": {true, false, false, false}})
	if p := r.observe(); !p.Ready || !p.ReadyKnown || !p.Containers[0].Ready {
		t.Fatalf("a running container without a readiness probe is not Ready: %+v", p)
	}
	r.settle("web/liveness", 1) // initial delay 0: at once
	for i := 2; i <= 4; i++ {
		r.advance(10 * time.Second)
		r.settle("web/liveness", i)
	}
	select {
	case reason := <-r.changes:
		if !strings.Contains(reason, "killed: liveness probe failed 3 times: HTTP 503") {
			t.Errorf("change reason %q", reason)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change after the kill")
	}
	if got := r.prober.killed(); len(got) != 1 || got[0] != "default/web/web grace 3s" {
		t.Fatalf("kills %v, want one with grace 3s", got)
	}
	if p := r.observe(); p.Ready {
		t.Errorf("a killed container is Ready")
	}
	r.advance(time.Minute)
	time.Sleep(20 * time.Millisecond) // nothing may happen: give it a chance to
	if n := r.prober.count("web/liveness"); n != 4 {
		t.Errorf("%d probes after the kill, want none", n-4)
	}
	if got := r.prober.killed(); len(got) != 1 {
		t.Errorf("kills %v, want one", got)
	}
	if log := r.logged(); strings.Count(log, "Kill (liveness probe failed 3 times: HTTP 503)") != 1 || !strings.Contains(log, "pod=default/web") {
		t.Errorf("log:\n%s", log)
	}

	// The restarted container is a new run: probed again from its start.
	r.actual.Pods[0].Containers[0] = reconciler.ActualContainer{Name: "web", State: reconciler.Exited, ExitCode: 137}
	r.observe()
	r.actual.Pods[0].Containers[0] = reconciler.ActualContainer{Name: "web", State: reconciler.Running, StartedAt: r.clock.Now(), Restarts: 1}
	r.observe()
	r.settle("web/liveness", 5)
}

// TestLivenessKillPodGrace: without a probe grace the kill uses the pod's.
func TestLivenessKillPodGrace(t *testing.T) {
	live := probe("liveness")
	live.FailureThreshold = 1
	r := newRig(t, reconciler.Probes{Liveness: live}, map[string][]bool{"web/liveness": {false}})
	r.observe()
	r.settle("web/liveness", 1)
	select {
	case <-r.changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change after the kill")
	}
	if got := r.prober.killed(); len(got) != 1 || got[0] != "default/web/web grace 7s" {
		t.Fatalf("kills %v, want one with the pod's grace 7s", got)
	}
}

// TestReadinessTransitions: readiness starts not Ready, becomes Ready at
// the first success and NotReady after three failures; each change is
// logged once and asks for a plan, the probes in between change nothing.
func TestReadinessTransitions(t *testing.T) {
	r := newRig(t, reconciler.Probes{Readiness: probe("readiness")},
		map[string][]bool{"web/readiness": {true, true, false, false, false, false, true}})
	start := r.clock.Now()
	if p := r.observe(); p.Ready || !p.ReadyKnown || p.Containers[0].Ready {
		t.Fatalf("Ready before the readiness probe passed: %+v", p)
	}
	r.settle("web/readiness", 1)
	expectChange(t, r, "Ready")
	p := r.observe()
	if !p.Ready || !p.ReadySince.Equal(start) || !p.Containers[0].Ready {
		t.Fatalf("after a success: %+v", p)
	}
	for i := 2; i <= 4; i++ {
		r.advance(10 * time.Second)
		r.settle("web/readiness", i)
		if p := r.observe(); !p.Ready {
			t.Fatalf("NotReady after %d failures", i-2)
		}
	}
	r.advance(10 * time.Second)
	r.settle("web/readiness", 5)
	expectChange(t, r, "NotReady")
	if p := r.observe(); p.Ready || !p.ReadySince.IsZero() {
		t.Fatalf("Ready after 3 failures: %+v", p)
	}
	r.advance(10 * time.Second)
	r.settle("web/readiness", 6)
	r.advance(10 * time.Second)
	r.settle("web/readiness", 7)
	expectChange(t, r, "Ready")
	if p := r.observe(); !p.Ready || !p.ReadySince.Equal(start.Add(60*time.Second)) {
		t.Fatalf("ready again: %+v", p)
	}
	log := r.logged()
	if strings.Count(log, "container web: Ready") != 2 || strings.Count(log, "container web: NotReady (readiness probe failed 3 times: HTTP 503)") != 1 {
		t.Errorf("log (want 2 Ready and 1 NotReady lines):\n%s", log)
	}
	if len(r.prober.killed()) != 0 {
		t.Errorf("readiness killed: %v", r.prober.killed())
	}
}

// expectChange waits for a change whose reason contains what.
func expectChange(t *testing.T, r *rig, what string) {
	t.Helper()
	select {
	case reason := <-r.changes:
		if !strings.HasSuffix(reason, " "+what) {
			t.Errorf("change %q, want %s", reason, what)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no change (%s)", what)
	}
}

// TestStartupGates: liveness and readiness are not run until the startup
// probe passed; then they run at once (their delay is over).
func TestStartupGates(t *testing.T) {
	startup := probe("startup")
	startup.FailureThreshold = 10
	r := newRig(t, reconciler.Probes{Startup: startup, Liveness: probe("liveness"), Readiness: probe("readiness")},
		map[string][]bool{"web/startup": {false, false, true}})
	r.observe()
	r.settle("web/startup", 1)
	r.advance(10 * time.Second)
	r.settle("web/startup", 2)
	if r.prober.count("web/liveness")+r.prober.count("web/readiness") != 0 {
		t.Fatal("liveness or readiness probed before the startup probe passed")
	}
	if p := r.observe(); p.Ready {
		t.Fatal("Ready before the startup probe passed")
	}
	r.advance(10 * time.Second)
	r.settle("web/startup", 3)
	r.settle("web/liveness", 1)
	r.settle("web/readiness", 1)
	if p := r.observe(); !p.Ready {
		t.Fatalf("not Ready after startup and readiness passed: %+v", p)
	}
	for i := 2; i <= 4; i++ {
		r.advance(10 * time.Second)
		r.settle("web/liveness", i)
	}
	if n := r.prober.count("web/startup"); n != 3 {
		t.Errorf("startup probed %d times, want 3 (never after it passed)", n)
	}
	if log := r.logged(); !strings.Contains(log, "container web: Started (startup probe passed)") {
		t.Errorf("log:\n%s", log)
	}
}

// TestNewRunNewTracker: a restarted container (new start time) is tracked
// anew: not Ready until its readiness probe passes again; a container
// that stopped or a pod that left the desired state is dropped.
func TestNewRunNewTracker(t *testing.T) {
	r := newRig(t, reconciler.Probes{Readiness: probe("readiness")}, nil)
	r.observe()
	r.settle("web/readiness", 1)
	if p := r.observe(); !p.Ready {
		t.Fatal("not Ready")
	}
	r.advance(5 * time.Second)
	r.actual.Pods[0].Containers[0].StartedAt = r.clock.Now()
	if p := r.observe(); p.Ready {
		t.Fatal("a new run is Ready before its probe")
	}
	r.settle("web/readiness", 2) // at once: no initial delay
	if p := r.observe(); !p.Ready || !p.ReadySince.Equal(r.clock.Now()) {
		t.Fatalf("new run: %+v", p)
	}
	// A spec that is no longer desired is not probed; it is Ready as it runs.
	r.desired[0].Hash = "h2"
	if p := r.observe(); !p.Ready || !p.ReadyKnown {
		t.Fatalf("an old spec's pod that runs: %+v", p)
	}
	r.e.mu.Lock()
	n := len(r.e.pods)
	r.e.mu.Unlock()
	if n != 0 {
		t.Errorf("%d pods tracked, want 0", n)
	}
	r.advance(time.Minute)
	time.Sleep(20 * time.Millisecond)
	if n := r.prober.count("web/readiness"); n != 2 {
		t.Errorf("a dropped pod was probed: %d probes", n)
	}
}

// TestWait: Wait returns on a readiness change, at its deadline, and
// false when ctx ends.
func TestWait(t *testing.T) {
	r := newRig(t, reconciler.Probes{Readiness: probe("readiness")}, map[string][]bool{"web/readiness": {false}})
	r.observe()
	r.settle("web/readiness", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r.e.Wait(ctx, time.Time{}) {
		t.Error("Wait returned true on a done context")
	}
	done := make(chan bool)
	go func() { done <- r.e.Wait(context.Background(), r.clock.Now().Add(time.Second)) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case ok := <-done:
			if !ok {
				t.Error("Wait at its deadline returned false")
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Wait did not return at its deadline")
		}
		r.clock.Advance(100 * time.Millisecond)
		time.Sleep(time.Millisecond)
	}
}

// TestBoundedParallelism: no more probes than Parallelism run at once.
func TestBoundedParallelism(t *testing.T) {
	block := make(chan struct{})
	var mu sync.Mutex
	in, most, total := 0, 0, 0
	p := &blockingProber{fn: func() {
		mu.Lock()
		in++
		total++
		most = max(most, in)
		mu.Unlock()
		<-block
		mu.Lock()
		in--
		mu.Unlock()
	}}
	c := clocktest.New()
	e, err := New(Config{Prober: p, Clock: c, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	var desired []reconciler.Pod
	var actual reconciler.Actual
	for i := range 5 {
		name := fmt.Sprintf("web-%d", i)
		desired = append(desired, reconciler.Pod{Namespace: "default", Name: name, Hash: "h",
			Containers: []reconciler.Container{{Name: "web", Probes: reconciler.Probes{Readiness: probe("readiness")}}}})
		actual.Pods = append(actual.Pods, reconciler.ActualPod{Namespace: "default", Name: name, Hash: "h", SandboxReady: true,
			Containers: []reconciler.ActualContainer{{Name: "web", State: reconciler.Running, StartedAt: c.Now()}}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	e.Observe(desired, actual)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := in
		mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(block)
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n == 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if most != 2 || total != 5 {
		t.Errorf("at most %d probes at once (want 2), %d in all (want 5)", most, total)
	}
}

// blockingProber calls fn for each probe and succeeds.
type blockingProber struct{ fn func() }

func (b *blockingProber) Probe(ctx context.Context, pod reconciler.ActualPod, container string, p reconciler.Probe) (bool, string) {
	b.fn()
	return true, ""
}

func (b *blockingProber) KillContainer(ctx context.Context, namespace, pod, container string, grace time.Duration) error {
	return nil
}
