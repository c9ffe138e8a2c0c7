package workload

import (
	"math/rand/v2"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// t0 is the reference time of the tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{-1, 10 * time.Second},
		{0, 10 * time.Second},
		{1, 20 * time.Second},
		{2, 40 * time.Second},
		{3, 80 * time.Second},
		{4, 160 * time.Second},
		{5, 5 * time.Minute},
		{6, 5 * time.Minute},
		{1000, 5 * time.Minute},
	} {
		if got := Backoff(tc.n); got != tc.want {
			t.Errorf("Backoff(%d) = %s, want %s", tc.n, got, tc.want)
		}
	}
}

func TestRestarts(t *testing.T) {
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		code   int
		want   bool
	}{
		{corev1.RestartPolicyAlways, 0, true},
		{corev1.RestartPolicyAlways, 1, true},
		{corev1.RestartPolicyOnFailure, 0, false},
		{corev1.RestartPolicyOnFailure, 137, true},
		{corev1.RestartPolicyNever, 0, false},
		{corev1.RestartPolicyNever, 1, false},
		{"", 0, true},
	} {
		if got := Restarts(tc.policy, tc.code); got != tc.want {
			t.Errorf("Restarts(%q, %d) = %v, want %v", tc.policy, tc.code, got, tc.want)
		}
	}
}

func TestDecideRestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  corev1.RestartPolicy
		code    int
		h       RestartHistory
		now     time.Time
		action  RestartAction
		due     time.Time
		wait    time.Duration
		streak  int // History.Streak after the decision
		reasons string
	}{
		{name: "first exit restarts at once",
			policy: corev1.RestartPolicyAlways, code: 1,
			h:   RestartHistory{StartedAt: at(0), FinishedAt: at(5 * time.Second)},
			now: at(5 * time.Second), action: RestartNow, due: at(5 * time.Second), streak: 1,
			reasons: "exited 1, restart 1"},
		{name: "killed out of band after running fine restarts at once",
			policy: corev1.RestartPolicyAlways, code: 137,
			h:   RestartHistory{Restarts: 4, Streak: 4, StartedAt: at(0), FinishedAt: at(10 * time.Minute)},
			now: at(10 * time.Minute), action: RestartNow, due: at(10 * time.Minute), streak: 1,
			reasons: "exited 137, restart 5"},
		{name: "second exit waits 10s",
			policy: corev1.RestartPolicyAlways, code: 1,
			h:   RestartHistory{Restarts: 1, Streak: 1, StartedAt: at(0), FinishedAt: at(time.Second)},
			now: at(2 * time.Second), action: RestartLater, due: at(11 * time.Second), wait: 10 * time.Second, streak: 1,
			reasons: "exited 1, restart 2 after back-off 10s, at 2026-03-01T12:00:11Z"},
		{name: "second exit after its back-off",
			policy: corev1.RestartPolicyAlways, code: 1,
			h:   RestartHistory{Restarts: 1, Streak: 1, StartedAt: at(0), FinishedAt: at(time.Second)},
			now: at(11 * time.Second), action: RestartNow, due: at(11 * time.Second), wait: 10 * time.Second, streak: 2},
		{name: "back-off doubles",
			policy: corev1.RestartPolicyAlways, code: 1,
			h:   RestartHistory{Restarts: 3, Streak: 3, StartedAt: at(0), FinishedAt: at(time.Second)},
			now: at(time.Second), action: RestartLater, due: at(41 * time.Second), wait: 40 * time.Second, streak: 3},
		{name: "back-off caps at 5 minutes",
			policy: corev1.RestartPolicyAlways, code: 1,
			h:   RestartHistory{Restarts: 30, Streak: 30, StartedAt: at(0), FinishedAt: at(time.Second)},
			now: at(time.Second), action: RestartLater, due: at(time.Second + 5*time.Minute), wait: 5 * time.Minute, streak: 30},
		{name: "just under 10 minutes of running keeps the streak",
			policy: corev1.RestartPolicyAlways, code: 1,
			h:   RestartHistory{Restarts: 2, Streak: 2, StartedAt: at(0), FinishedAt: at(10*time.Minute - time.Second)},
			now: at(10*time.Minute - time.Second), action: RestartLater, due: at(10*time.Minute + 19*time.Second), wait: 20 * time.Second, streak: 2},
		{name: "unknown start keeps the streak",
			policy: corev1.RestartPolicyAlways, code: 1,
			h:   RestartHistory{Restarts: 2, Streak: 2, FinishedAt: at(time.Hour)},
			now: at(time.Hour), action: RestartLater, due: at(time.Hour + 20*time.Second), wait: 20 * time.Second, streak: 2},
		{name: "unknown finish counts as long ago",
			policy: corev1.RestartPolicyAlways, code: 1,
			h:   RestartHistory{Restarts: 2, Streak: 2},
			now: at(0), action: RestartNow, due: at(0), wait: 20 * time.Second, streak: 3},
		{name: "OnFailure restarts a failure",
			policy: corev1.RestartPolicyOnFailure, code: 2,
			h:   RestartHistory{StartedAt: at(0), FinishedAt: at(time.Second)},
			now: at(time.Second), action: RestartNow, due: at(time.Second), streak: 1},
		{name: "OnFailure keeps a success stopped",
			policy: corev1.RestartPolicyOnFailure, code: 0,
			h:   RestartHistory{StartedAt: at(0), FinishedAt: at(time.Second)},
			now: at(time.Second), action: NoRestart,
			reasons: "exited 0, not restarted (restartPolicy OnFailure)"},
		{name: "Never keeps a failure stopped",
			policy: corev1.RestartPolicyNever, code: 1,
			h:   RestartHistory{Streak: 3, StartedAt: at(0), FinishedAt: at(time.Second)},
			now: at(time.Second), action: NoRestart, streak: 3},
		{name: "Always restarts a success with back-off too",
			policy: corev1.RestartPolicyAlways, code: 0,
			h:   RestartHistory{Restarts: 1, Streak: 1, StartedAt: at(0), FinishedAt: at(time.Second)},
			now: at(time.Second), action: RestartLater, due: at(11 * time.Second), wait: 10 * time.Second, streak: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideRestart(tc.policy, tc.code, tc.h, tc.now)
			if d.Action != tc.action {
				t.Fatalf("action %s, want %s (%s)", d.Action, tc.action, d.Reason)
			}
			if d.Action != NoRestart && !d.At.Equal(tc.due) {
				t.Errorf("due %s, want %s", d.At, tc.due)
			}
			if d.Wait != tc.wait {
				t.Errorf("wait %s, want %s", d.Wait, tc.wait)
			}
			if d.History.Streak != tc.streak {
				t.Errorf("streak %d, want %d", d.History.Streak, tc.streak)
			}
			if d.Action == RestartNow && d.History.Restarts != tc.h.Restarts+1 {
				t.Errorf("restarts %d, want %d", d.History.Restarts, tc.h.Restarts+1)
			}
			if tc.reasons != "" && d.Reason != tc.reasons {
				t.Errorf("reason %q, want %q", d.Reason, tc.reasons)
			}
		})
	}
}

// TestCrashLoopProperty simulates containers that run for random times and
// compares DecideRestart with a naive model of the kubelet's rules: the
// first restart of a streak is at once, the next waits 10 s, each wait
// doubles up to 5 minutes, and a run of 10 minutes starts a new streak.
func TestCrashLoopProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		h := RestartHistory{StartedAt: t0}
		streak := 0 // the model's
		for range 40 {
			run := time.Duration(rng.IntN(30)) * time.Second
			if rng.IntN(3) == 0 {
				run = time.Duration(rng.IntN(int(15*time.Minute/time.Second))) * time.Second
			}
			h.FinishedAt = h.StartedAt.Add(run)
			if run >= 10*time.Minute {
				streak = 0
			}
			want := time.Duration(0)
			if streak > 0 {
				want = 10 * time.Second
				for i := 1; i < streak && want < 5*time.Minute; i++ {
					want *= 2
				}
				want = min(want, 5*time.Minute)
			}
			d := DecideRestart(corev1.RestartPolicyAlways, 1, h, h.FinishedAt)
			if d.Wait != want {
				t.Fatalf("streak %d, run %s: wait %s, want %s", streak, run, d.Wait, want)
			}
			if (want == 0) != (d.Action == RestartNow) {
				t.Fatalf("wait %s but action %s", want, d.Action)
			}
			if d.Action == RestartLater {
				if !d.At.Equal(h.FinishedAt.Add(want)) {
					t.Fatalf("due %s, want finish + %s", d.At, want)
				}
				if early := DecideRestart(corev1.RestartPolicyAlways, 1, h, d.At.Add(-time.Nanosecond)); early.Action != RestartLater {
					t.Fatalf("just before the due time: %s", early.Action)
				}
				d = DecideRestart(corev1.RestartPolicyAlways, 1, h, d.At)
				if d.Action != RestartNow {
					t.Fatalf("at the due time: %s", d.Action)
				}
			}
			streak++
			h = d.History
			h.StartedAt = d.At
		}
	}
}

// TestDecideRestartClockJumps: the wall clock jumps an hour forwards or
// backwards while a container waits for its back-off. Forwards, the
// back-off is over: one restart now, and the next exit waits as usual (no
// storm). Backwards, the exit is dated an hour ahead: before the fix the
// restart waited for the clock to catch up, an hour with the container
// down; now it restarts at once, and the next exit waits as usual.
func TestDecideRestartClockJumps(t *testing.T) {
	exited := RestartHistory{Restarts: 3, Streak: 3, StartedAt: at(0), FinishedAt: at(time.Second)} // back-off 40 s
	for _, tc := range []struct {
		name   string
		jump   time.Duration
		action RestartAction
		at     time.Time
	}{
		{"no jump", 0, RestartLater, at(41 * time.Second)},
		{"an hour forwards", time.Hour, RestartNow, at(time.Hour + 2*time.Second)},
		{"an hour backwards", -time.Hour, RestartNow, at(-time.Hour + 2*time.Second)},
		{"backwards less than the back-off", -30 * time.Second, RestartLater, at(41 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := at(2*time.Second + tc.jump)
			d := DecideRestart(corev1.RestartPolicyAlways, 1, exited, now)
			if d.Action != tc.action || !d.At.Equal(tc.at) {
				t.Fatalf("after the jump: %s at %v (%s), want %s at %v", d.Action, d.At, d.Reason, tc.action, tc.at)
			}
			if d.Action != RestartNow {
				return
			}
			// The restarted container crashes again a second later, dated
			// on the new clock: the next restart waits its back-off.
			next := d.History
			next.FinishedAt = now.Add(time.Second)
			d2 := DecideRestart(corev1.RestartPolicyAlways, 1, next, now.Add(time.Second))
			if d2.Action != RestartLater || d2.Wait != Backoff(next.Streak-1) {
				t.Errorf("the exit after the jump: %s after %v (%s), want a back-off of %v", d2.Action, d2.Wait, d2.Reason, Backoff(next.Streak-1))
			}
		})
	}
}
