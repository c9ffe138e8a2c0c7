package clocktest

import (
	"testing"
	"time"
)

// fired reports whether t's channel holds a time.
func fired(t interface{ C() <-chan time.Time }) bool {
	select {
	case <-t.C():
		return true
	default:
		return false
	}
}

func TestTimers(t *testing.T) {
	c := New()
	now := c.NewTimer(0)
	if !fired(now) {
		t.Error("a timer of 0 did not fire at once")
	}
	a := c.NewTimer(time.Minute)
	b := c.NewTimer(2 * time.Minute)
	stopped := c.NewTimer(time.Minute)
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop of a pending timer: want true once, then false")
	}
	c.Advance(59 * time.Second)
	if fired(a) || fired(b) {
		t.Fatal("a timer fired early")
	}
	c.Advance(time.Second)
	if !fired(a) || fired(b) || fired(stopped) {
		t.Fatal("after one minute: want only the one-minute timer fired")
	}
	if a.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
	c.Advance(time.Minute)
	if !fired(b) {
		t.Error("the two-minute timer did not fire")
	}
	if got, want := c.Now(), Start.Add(2*time.Minute); !got.Equal(want) {
		t.Errorf("Now = %v, want %v", got, want)
	}
	if got := c.Created(); got != 4 {
		t.Errorf("Created = %d, want 4", got)
	}
}
