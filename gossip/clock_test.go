package gossip

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    chan time.Time
	at   time.Time
	done bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { was := !t.done; t.done = true; return was }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d)}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time on and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	var keep []*fakeTimer
	for _, t := range c.timers {
		if !t.done && !t.at.After(c.now) {
			t.done = true
			t.c <- c.now
			continue
		}
		keep = append(keep, t)
	}
	c.timers = keep
}

// TestElectionUsesInjectedClock: the settle period is measured on the
// injected clock; no wall time needs to pass for a claim.
func TestElectionUsesInjectedClock(t *testing.T) {
	clk := &fakeClock{now: t0}
	cl := startCluster(t, 1, func(i int, c *Config) {
		c.Clock = clk
		c.SettlePeriod = time.Hour
	})
	n := cl.nodes[0]
	n.step()
	if l := n.Leader(); l.Self || l.Leader != "" {
		t.Fatalf("claimed before the settle period: %+v", l)
	}
	clk.Advance(59 * time.Minute)
	n.step()
	if l := n.Leader(); l.Self {
		t.Fatalf("claimed after 59 of 60 minutes: %+v", l)
	}
	clk.Advance(time.Minute)
	n.step()
	if l := n.Leader(); !l.Self || l.Term != 1 {
		t.Fatalf("no claim once settled: %+v", l)
	}
}
