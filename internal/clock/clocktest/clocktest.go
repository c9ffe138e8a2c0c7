// Package clocktest holds the hand-driven clock.Clock that tests of the
// agent and the gossip node share: time moves only when a test calls
// Advance, so settle periods, back-off and delays are tested without
// sleeping. It is imported by tests only, never by production code.
package clocktest

import (
	"slices"
	"sync"
	"time"

	"github.com/kelpie-dev/kelpie/internal/clock"
)

// Start is the time a Clock made by New shows before it is advanced.
var Start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Clock is a clock.Clock that moves only when told. It is safe for
// concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
	made   int // timers made so far
}

var _ clock.Clock = (*Clock)(nil)

// New returns a Clock at Start.
func New() *Clock { return At(Start) }

// At returns a Clock showing now.
func At(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once the clock is advanced d past
// now, or at once when d <= 0.
func (c *Clock) NewTimer(d time.Duration) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.made++
	t := &timer{c: c, ch: make(chan time.Time, 1), at: c.now.Add(d)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Created is how many timers were made so far: a test that sees it grow
// knows the code under test handled what came before and waits again.
func (c *Clock) Created() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made
}

// Advance moves time on by d and fires the timers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = kept
}

// timer is a one-shot timer of a Clock.
type timer struct {
	c  *Clock
	ch chan time.Time
	at time.Time
}

// C delivers the time once the timer fires.
func (t *timer) C() <-chan time.Time { return t.ch }

// Stop removes a pending timer; it reports whether the timer was pending.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}
