package probes

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/clock/clocktest"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// manyPods returns n desired pods, each with one container "c<i>" whose
// readiness probe runs every period, and the actual pods, running since
// start(i).
func manyPods(n int, period time.Duration, start func(i int) time.Time) ([]reconciler.Pod, reconciler.Actual) {
	var (
		desired []reconciler.Pod
		actual  reconciler.Actual
	)
	for i := range n {
		name, c := fmt.Sprintf("p%d", i), fmt.Sprintf("c%d", i)
		ready := probe("readiness")
		ready.Period = period
		desired = append(desired, reconciler.Pod{Namespace: "default", Name: name, Hash: "h",
			Containers: []reconciler.Container{{Name: c, Probes: reconciler.Probes{Readiness: ready}}}})
		actual.Pods = append(actual.Pods, reconciler.ActualPod{Namespace: "default", Name: name, Hash: "h", SandboxReady: true, IP: "10.244.0.2",
			Containers: []reconciler.ActualContainer{{Name: c, State: reconciler.Running, StartedAt: start(i)}}})
	}
	return desired, actual
}

// TestManyPodsEveryPeriod: with many pods started at different times, each
// is probed once per period, on time, although a probe that ends does not
// wake the engine's loop (only one whose next probe is due before the loop
// wakes does): no probe is missed or made twice.
func TestManyPodsEveryPeriod(t *testing.T) {
	const (
		n      = 50
		period = time.Second
		step   = 10 * time.Millisecond
	)
	clk := clocktest.New()
	t0 := clk.Now()
	start := func(i int) time.Time { return t0.Add(time.Duration(i) * 20 * time.Millisecond) }
	prober := newFakeProber(nil)
	e, err := New(Config{Prober: prober, Clock: clk, Parallelism: 4})
	if err != nil {
		t.Fatal(err)
	}
	desired, actual := manyPods(n, period, start)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// want is how many probes of pod i are due by now: at its start (no
	// initial delay), then every period.
	want := func(i int, now time.Time) int {
		if now.Before(start(i)) {
			return 0
		}
		return int(now.Sub(start(i))/period) + 1
	}
	// Pods are observed as they start, in the first second; then never
	// again (an Observe wakes the loop).
	observe := func(now time.Time) {
		var d []reconciler.Pod
		var a reconciler.Actual
		for i := range n {
			if !now.Before(start(i)) {
				d = append(d, desired[i])
				a.Pods = append(a.Pods, actual.Pods[i])
			}
		}
		e.Observe(d, a)
	}
	total := func(now time.Time) (got, due int) {
		for i := range n {
			got += prober.count(fmt.Sprintf("c%d/readiness", i))
			due += want(i, now)
		}
		return got, due
	}
	end := t0.Add(4 * period)
	for now := t0; now.Before(end); now = now.Add(step) {
		if now.After(t0) {
			clk.Advance(step)
		}
		if !now.After(start(n - 1)) {
			observe(now)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, w := total(now)
			if got == w {
				break
			}
			if got > w || time.Now().After(deadline) {
				t.Fatalf("at +%v: %d probes made, want %d", now.Sub(t0), got, w)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	for i := range n {
		if got, w := prober.count(fmt.Sprintf("c%d/readiness", i)), want(i, end.Add(-step)); got != w {
			t.Errorf("pod %d probed %d times, want %d", i, got, w)
		}
	}
}

// BenchmarkLaunch is one pass of the engine's loop over 100 pods with a
// probe each, none of them due: what each wake of the loop costs.
func BenchmarkLaunch(b *testing.B) {
	clk := clocktest.New()
	e, err := New(Config{Prober: newFakeProber(nil), Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	desired, actual := manyPods(100, time.Second, func(int) time.Time { return clk.Now() })
	e.Observe(desired, actual)
	ctx := context.Background()
	e.launch(ctx) // each is probed once
	e.wg.Wait()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := e.launch(ctx); !ok {
			b.Fatal("nothing due")
		}
	}
}

// gateProber holds every probe until release is closed, and records the
// most probes it held at once.
type gateProber struct {
	mu            sync.Mutex
	held, maxHeld int
	calls         int
	release       chan struct{}
}

func (g *gateProber) Probe(ctx context.Context, _ reconciler.ActualPod, _ string, _ reconciler.Probe) (bool, string) {
	g.mu.Lock()
	g.held++
	g.calls++
	g.maxHeld = max(g.maxHeld, g.held)
	g.mu.Unlock()
	<-g.release
	g.mu.Lock()
	g.held--
	g.mu.Unlock()
	return true, "exit 0"
}

func (g *gateProber) KillContainer(context.Context, string, string, string, time.Duration) error {
	return nil
}

func (g *gateProber) state() (held, maxHeld, calls int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, g.maxHeld, g.calls
}

// TestExecParallelism: no more exec probes run at once than
// ExecParallelism; the others wait for a slot, and all are made.
func TestExecParallelism(t *testing.T) {
	clk := clocktest.New()
	g := &gateProber{release: make(chan struct{})}
	e, err := New(Config{Prober: g, Clock: clk, ExecParallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	desired, actual := manyPods(10, 10*time.Second, func(int) time.Time { return clk.Now() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	e.Observe(desired, actual)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if held, _, _ := g.state(); held == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first 2 exec probes did not start")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // a third may not start: give it a chance to
	if _, maxHeld, _ := g.state(); maxHeld != 2 {
		t.Fatalf("%d exec probes at once, want 2", maxHeld)
	}
	close(g.release)
	for {
		if _, _, calls := g.state(); calls == 10 {
			break
		}
		if time.Now().After(deadline) {
			_, _, calls := g.state()
			t.Fatalf("%d exec probes made, want 10", calls)
		}
		time.Sleep(time.Millisecond)
	}
	if _, maxHeld, _ := g.state(); maxHeld > 2 {
		t.Errorf("%d exec probes at once, want at most 2", maxHeld)
	}
}
