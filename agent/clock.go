package agent

import "github.com/kelpie-dev/kelpie/internal/clock"

// Clock is the agent's source of time: the poll interval, back-off, drift
// checks and every timestamp in state and status come from it, so tests
// advance time by hand. It is the same interface the gossip node takes.
type Clock = clock.Clock

// Timer is a one-shot timer made by a Clock.
type Timer = clock.Timer

// SystemClock is the wall clock.
type SystemClock = clock.System
