package reconciler

import (
	"time"

	"github.com/kelpie-dev/kelpie/workload"
)

// Restart back-off, as the kubelet's: 10 s after the first exit, doubled
// for every restart since, at most 5 minutes. The rules live in package
// workload (workload.DecideRestart); these names stay for the planner.
const (
	// BackoffInitial is the wait before the first restart.
	BackoffInitial = workload.BackoffInitial
	// BackoffMax caps the wait.
	BackoffMax = workload.BackoffMax
)

// Backoff returns how long after an exit a container that was restarted
// restarts times before is restarted again: BackoffInitial·2^restarts,
// at most BackoffMax (workload.Backoff).
func Backoff(restarts int) time.Duration { return workload.Backoff(restarts) }
