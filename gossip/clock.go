package gossip

import "github.com/kelpie-dev/kelpie/internal/clock"

// Clock is the Node's source of time: the election's settle period, the
// rejoin back-off, status versions and log rate limits come from it, so
// tests can advance time by hand. memberlist's own probe and gossip timers
// run on the wall clock.
type Clock = clock.Clock

// Timer is a one-shot timer made by a Clock.
type Timer = clock.Timer

// SystemClock is the wall clock.
type SystemClock = clock.System
