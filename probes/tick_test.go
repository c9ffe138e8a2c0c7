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

// timedProber records when (on its clock) each container was probed; every
// probe passes.
type timedProber struct {
	clk *clocktest.Clock
	mu  sync.Mutex
	at  map[string][]time.Time
}

func (p *timedProber) Probe(ctx context.Context, pod reconciler.ActualPod, container string, pr reconciler.Probe) (bool, string) {
	now := p.clk.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at[container] = append(p.at[container], now)
	return true, ""
}

func (p *timedProber) KillContainer(ctx context.Context, namespace, pod, container string, grace time.Duration) error {
	return nil
}

func (p *timedProber) times(container string) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.at[container]...)
}

// TestTickBatches: with Config.Tick, the probes of pods started at
// different times start on the ticks, each at the first tick at or after
// it is due, then every period; the loop wakes once a tick at most, and
// each readiness is as of the tick its probe started on.
func TestTickBatches(t *testing.T) {
	const (
		n      = 20
		tick   = 100 * time.Millisecond
		period = time.Second
		step   = 5 * time.Millisecond
	)
	clk := clocktest.New()
	t0 := clk.Now()
	if t0.Truncate(tick) != t0 {
		t.Fatalf("the fake clock starts off a tick: %v", t0)
	}
	start := func(i int) time.Time { return t0.Add(time.Duration(i) * 15 * time.Millisecond) }
	// first(i) is pod i's first probe: the tick at or after its start.
	first := func(i int) time.Time {
		s := start(i)
		if on := s.Truncate(tick); on.Before(s) {
			return on.Add(tick)
		}
		return s
	}
	prober := &timedProber{clk: clk, at: map[string][]time.Time{}}
	e, err := New(Config{Prober: prober, Clock: clk, Tick: tick})
	if err != nil {
		t.Fatal(err)
	}
	desired, actual := manyPods(n, period, start)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	want := func(i int, now time.Time) int {
		if now.Before(first(i)) {
			return 0
		}
		return int(now.Sub(first(i))/period) + 1
	}
	var timers int
	end := t0.Add(3 * period)
	for now := t0; now.Before(end); now = now.Add(step) {
		if now.After(t0) {
			clk.Advance(step)
		}
		if !now.After(start(n - 1)) { // pods are observed as they start
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
		if now.Equal(t0.Add(2 * period)) {
			timers = clk.Created()
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, w := 0, 0
			for i := range n {
				got += len(prober.times(fmt.Sprintf("c%d", i)))
				w += want(i, now)
			}
			if got == w {
				break
			}
			if got > w || time.Now().After(deadline) {
				t.Fatalf("at +%v: %d probes made, want %d", now.Sub(t0), got, w)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	if woke := clk.Created() - timers; woke > 12 {
		t.Errorf("the loop set %d timers in the last second, want one a tick (10) or so", woke)
	}
	for i := range n {
		for k, at := range prober.times(fmt.Sprintf("c%d", i)) {
			if w := first(i).Add(time.Duration(k) * period); !at.Equal(w) {
				t.Errorf("pod %d probe %d at +%v, want +%v", i, k, at.Sub(t0), w.Sub(t0))
			}
		}
	}
	pods := e.Observe(desired, actual).Pods
	for i, p := range pods {
		if !p.Ready || !p.ReadySince.Equal(first(i)) {
			t.Errorf("pod %d: Ready %v since +%v, want since +%v", i, p.Ready, p.ReadySince.Sub(t0), first(i).Sub(t0))
		}
	}
}
