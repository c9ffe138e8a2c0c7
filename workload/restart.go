package workload

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Restart back-off, as the kubelet's: the first restart is at once, then
// 10 s, doubling, at most 5 minutes; 10 minutes of running resets it.
const (
	// BackoffInitial is the wait before the second restart of a crash loop.
	BackoffInitial = 10 * time.Second
	// BackoffMax caps the wait.
	BackoffMax = 5 * time.Minute
	// BackoffReset is how long a container must have run for its next
	// exit to count as the first of a new streak (restart at once).
	BackoffReset = 10 * time.Minute
)

// Backoff returns BackoffInitial·2^n, at most BackoffMax (n < 0 counts as
// 0): the wait before the restart that follows n back-off restarts.
func Backoff(n int) time.Duration {
	d := BackoffInitial
	for range max(n, 0) {
		d *= 2
		if d >= BackoffMax {
			return BackoffMax
		}
	}
	return min(d, BackoffMax)
}

// RestartHistory is what a host records of one container across its runs,
// enough to decide its next restart.
type RestartHistory struct {
	// Restarts counts every restart of the container (the RESTARTS column).
	Restarts int `json:"restarts,omitempty"`
	// Streak counts the restarts since the back-off last reset: 0 means
	// the next exit restarts at once.
	Streak int `json:"streak,omitempty"`
	// StartedAt and FinishedAt bound the run that just ended. A zero
	// StartedAt is unknown (the run does not count as healthy); a zero
	// FinishedAt is unknown and counts as long ago (no wait).
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// RestartAction is what DecideRestart tells the caller to do.
type RestartAction string

// Restart actions.
const (
	// RestartNow: start the container again now.
	RestartNow RestartAction = "RestartNow"
	// RestartLater: wait for the back-off; RestartDecision.At says until when.
	RestartLater RestartAction = "RestartLater"
	// NoRestart: the restart policy keeps the container stopped.
	NoRestart RestartAction = "NoRestart"
)

// RestartDecision is the outcome of DecideRestart.
type RestartDecision struct {
	Action RestartAction
	// At is when the restart is due (now for RestartNow).
	At time.Time
	// Wait is the back-off that applies to this restart (0 for the first
	// of a streak).
	Wait time.Duration
	// History is the record to keep: after RestartNow, Restarts and Streak
	// counted one up and StartedAt now (the caller may record the real
	// start); for the other actions the input, with Streak reset when the
	// run was healthy.
	History RestartHistory
	// Reason is a short sentence for logs and `kelpie ps`, e.g.
	// "exited 1, restart 3 after back-off 20s".
	Reason string
}

// Restarts reports whether policy restarts a container that exited with
// code: Always always, OnFailure for a non-zero code, Never never. An
// unknown policy counts as Always, the pod default.
func Restarts(policy corev1.RestartPolicy, code int) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}

// DecideRestart decides, as the kubelet does, what happens to a container
// of a pod with policy that exited with code after the run h records:
//
//   - the policy may keep it stopped (Restarts);
//   - a run of at least BackoffReset resets the streak;
//   - the first restart of a streak is at once, the next after
//     Backoff(0) = 10 s from FinishedAt, then 20 s, 40 s … up to 5 min;
//   - a FinishedAt more than the back-off after now (the wall clock went
//     back) restarts at once rather than waiting for the clock to catch up.
//
// The same rules apply to a container killed by its liveness probe (its
// exit code is that of the signal). For an init container pass OnFailure
// when the pod says Always: an init container that succeeded is done.
func DecideRestart(policy corev1.RestartPolicy, code int, h RestartHistory, now time.Time) RestartDecision {
	if !h.StartedAt.IsZero() && !h.FinishedAt.IsZero() && h.FinishedAt.Sub(h.StartedAt) >= BackoffReset {
		h.Streak = 0
	}
	if !Restarts(policy, code) {
		return RestartDecision{Action: NoRestart, History: h,
			Reason: fmt.Sprintf("exited %d, not restarted (restartPolicy %s)", code, policy)}
	}
	var wait time.Duration
	if h.Streak > 0 {
		wait = Backoff(h.Streak - 1)
	}
	due := now
	if !h.FinishedAt.IsZero() && h.FinishedAt.Add(wait).After(now) {
		due = h.FinishedAt.Add(wait)
	}
	what := fmt.Sprintf("exited %d, restart %d", code, h.Restarts+1)
	if wait > 0 {
		what += fmt.Sprintf(" after back-off %s", wait)
	}
	// An exit more than the back-off in the future means the wall clock
	// went back (the exit time comes from containerd's clock, now from
	// ours): waiting for it would hold the container down for as long as
	// the jump (an hour back, an hour down). Restart now instead; the exits
	// after the jump are dated on the new clock, so this happens once.
	if !h.FinishedAt.IsZero() && h.FinishedAt.After(now.Add(wait)) {
		due = now
		what += " (the clock went back: its exit is dated " + h.FinishedAt.Sub(now).Round(time.Second).String() + " ahead)"
	}
	if due.After(now) {
		return RestartDecision{Action: RestartLater, At: due, Wait: wait, History: h,
			Reason: fmt.Sprintf("%s, at %s", what, due.UTC().Format(time.RFC3339))}
	}
	next := RestartHistory{Restarts: h.Restarts + 1, Streak: h.Streak + 1, StartedAt: now}
	return RestartDecision{Action: RestartNow, At: now, Wait: wait, History: next, Reason: what}
}
