package reconciler

import "github.com/kelpie-dev/kelpie/workload"

// Restart back-off, as the kubelet's: the first restart of a streak is at
// once, the next after BackoffInitial, doubling up to BackoffMax. The rules
// live in package workload (workload.DecideRestart, used by the planner).
const (
	// BackoffInitial is the wait before the second restart of a streak.
	BackoffInitial = workload.BackoffInitial
	// BackoffMax caps the wait.
	BackoffMax = workload.BackoffMax
)
