package nft

import (
	"context"
	"strings"
	"time"

	"github.com/kelpie-dev/kelpie/netplan"
)

// Stale chains: a change that leaves a chain unused flushes it
// (netplan.Change.Stale); the chain itself is deleted by a later
// transaction, StaleDelay after the change, from the Loader's own timer.
// Each chain waits StaleDelay from the last change that emptied it, however
// often changes come (the timer is never pushed back), so the list stays as
// short as the changes of one StaleDelay. A deletion that fails is retried
// staleAttempts times, then the chains are left alone: empty and unused,
// they cost nothing, and the next full Load removes them.

// markStaleLocked records the chains a change emptied at now, forgets those
// the current ruleset uses again (ApplyChange forgets those its change
// declares), and arms the timer.
func (l *Loader) markStaleLocked(emptied []string, now time.Time) {
	for _, n := range emptied {
		l.stale[n] = now // a chain emptied again waits from now
	}
	for n := range l.stale {
		if l.current != nil && l.current.HasChain(n) {
			delete(l.stale, n)
		}
	}
	l.armLocked(now)
}

// armLocked sets the timer for the earliest chain due, when one waits.
func (l *Loader) armLocked(now time.Time) {
	if len(l.stale) == 0 || l.closed {
		return
	}
	var first time.Time
	for _, at := range l.stale {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	wait := max(first.Add(l.cfg.StaleDelay).Sub(now), 0)
	if l.timer == nil {
		l.timer = time.AfterFunc(wait, l.deleteStale)
		return
	}
	// wait is the earliest due time, so this never postpones a chain. A
	// timer that fired already runs once more, finding nothing due.
	l.timer.Reset(wait)
}

// deleteStale runs on the timer: it deletes the chains whose delay has
// passed in one transaction, and sets the timer again for the others.
func (l *Loader) deleteStale() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || (l.current == nil && !l.planned) {
		return
	}
	now := time.Now()
	var due []string
	for n, at := range l.stale {
		if now.Sub(at) >= l.cfg.StaleDelay {
			due = append(due, n)
		}
	}
	if len(due) == 0 {
		l.armLocked(now)
		return
	}
	text := netplan.DeleteStale(l.current, due)
	if text != "" {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Timeout)
		err := l.run(ctx, text)
		cancel()
		if err != nil {
			l.attempts++
			if l.attempts < staleAttempts {
				l.cfg.Log.Warn("deleting stale nftables chains failed; will retry", "chains", len(due), "err", err)
				l.timer.Reset(l.cfg.StaleDelay)
				return
			}
			l.cfg.Log.Warn("deleting stale nftables chains failed; leaving them empty until the next full load", "chains", len(due), "err", err)
		} else {
			l.stats.StaleDeleted += uint64(strings.Count(text, "\n"))
		}
	}
	l.attempts = 0
	for _, n := range due {
		delete(l.stale, n)
	}
	l.armLocked(time.Now())
}
