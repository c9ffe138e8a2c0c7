package reconciler

import "time"

// Restart back-off, as the kubelet's: 10 s after the first exit, doubled
// for every restart since, at most 5 minutes.
const (
	// BackoffInitial is the wait before the first restart.
	BackoffInitial = 10 * time.Second
	// BackoffMax caps the wait.
	BackoffMax = 5 * time.Minute
)

// Backoff returns how long after an exit a container that was restarted
// restarts times before is restarted again: BackoffInitial·2^restarts,
// at most BackoffMax.
func Backoff(restarts int) time.Duration {
	if restarts < 0 {
		restarts = 0
	}
	d := BackoffInitial
	for range restarts {
		d *= 2
		if d >= BackoffMax {
			return BackoffMax
		}
	}
	return min(d, BackoffMax)
}
