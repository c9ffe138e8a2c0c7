package scheduler

import (
	"errors"
	"fmt"
	"time"
)

// DefaultRescheduleAfter is how long a dead node keeps its replicas before
// they move: memberlist declares a killed node dead after about 6 s on a
// LAN, so 30 s rides out a reboot or a short network cut without moving
// anything, and is what --reschedule-after defaults to.
const DefaultRescheduleAfter = 30 * time.Second

// ErrStaleTerm is returned by Place when asked to place for a term lower
// than the previous placement's: a leader that has been superseded must
// not publish placements.
var ErrStaleTerm = errors.New("stale term")

// Options configure one Place.
type Options struct {
	// Term is the placing leader's term; 0 keeps the previous placement's
	// term (for previews such as `kelpie plan --cluster`).
	Term uint64
	// Commit is the commit the desired state was loaded from; the placement
	// names it so every host runs the same commit.
	Commit string
	// Now is the current time, injected; required.
	Now time.Time
	// RescheduleAfter is how long after Node.DownSince a dead node's
	// replicas move; 0 means DefaultRescheduleAfter. Use a tiny positive
	// value (1ns) to move them at once.
	RescheduleAfter time.Duration
}

// validate fills zero values and rejects nonsense.
func (o *Options) validate() error {
	if o.Now.IsZero() {
		return errors.New("options: Now is required (inject the clock)")
	}
	switch {
	case o.RescheduleAfter == 0:
		o.RescheduleAfter = DefaultRescheduleAfter
	case o.RescheduleAfter < 0:
		return fmt.Errorf("options: RescheduleAfter must be positive, got %s", o.RescheduleAfter)
	}
	return nil
}
