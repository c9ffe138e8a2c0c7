package scheduler

import (
	"slices"
	"testing"
	"time"
)

// TestStallTracker: a rollout that makes no progress for its deadline is
// stalled, and is no longer once it makes progress, completes or a new
// template starts a new rollout.
func TestStallTracker(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	const deadline = 600 * time.Second
	obs := func(hash string, updated, ready int) []RolloutProgress {
		return []RolloutProgress{{Key: "default/web", Hash: hash, Total: 3, Updated: updated, Ready: ready, Deadline: deadline}}
	}
	type step struct {
		at    time.Duration // since t0
		obs   []RolloutProgress
		stall string // "" when not stalled
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"progress within the deadline", []step{
			{0, obs("v2", 1, 0), ""},
			{500 * time.Second, obs("v2", 1, 1), ""},
			{1000 * time.Second, obs("v2", 2, 1), ""},
			{1500 * time.Second, obs("v2", 3, 3), ""},
		}},
		{"no progress: stalled at the deadline, not before", []step{
			{0, obs("v2", 1, 0), ""},
			{599 * time.Second, obs("v2", 1, 0), ""},
			{600 * time.Second, obs("v2", 1, 0), "rollout stalled: 3 of 3 new pods not ready after 600s"},
			{900 * time.Second, obs("v2", 1, 0), "rollout stalled: 3 of 3 new pods not ready after 600s"},
		}},
		{"progress again: recovers", []step{
			{0, obs("v2", 1, 0), ""},
			{700 * time.Second, obs("v2", 1, 0), "rollout stalled: 3 of 3 new pods not ready after 600s"},
			{710 * time.Second, obs("v2", 1, 1), ""},
		}},
		{"a pod lost is no progress; regained it is", []step{
			{0, obs("v2", 2, 2), ""},
			{300 * time.Second, obs("v2", 2, 1), ""},
			{599 * time.Second, obs("v2", 2, 1), ""},
			{600 * time.Second, obs("v2", 2, 1), "rollout stalled: 2 of 3 new pods not ready after 600s"},
			{601 * time.Second, obs("v2", 2, 2), ""},
		}},
		{"a new template starts over", []step{
			{0, obs("v2", 1, 0), ""},
			{700 * time.Second, obs("v2", 1, 0), "rollout stalled: 3 of 3 new pods not ready after 600s"},
			{701 * time.Second, obs("v3", 0, 0), ""},
		}},
		{"complete, then a pod lost: no stall", []step{
			{0, obs("v2", 1, 0), ""},
			{10 * time.Second, obs("v2", 3, 3), ""},
			{20 * time.Second, obs("v2", 3, 2), ""},
			{9000 * time.Second, obs("v2", 3, 2), ""},
			{9001 * time.Second, obs("v3", 1, 0), ""},
			{9601 * time.Second, obs("v3", 1, 0), "rollout stalled: 3 of 3 new pods not ready after 600s"},
		}},
		{"complete: never stalled", []step{
			{0, obs("v2", 3, 3), ""},
			{9000 * time.Second, obs("v2", 3, 3), ""},
		}},
		{"no deadline: never stalled", []step{
			{0, []RolloutProgress{{Key: "default/web", Hash: "v2", Total: 3}}, ""},
			{9000 * time.Second, []RolloutProgress{{Key: "default/web", Hash: "v2", Total: 3}}, ""},
		}},
		{"forgotten when not observed", []step{
			{0, obs("v2", 1, 0), ""},
			{300 * time.Second, nil, ""},
			{700 * time.Second, obs("v2", 1, 0), ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr StallTracker
			for i, s := range tc.steps {
				got := tr.Observe(t0.Add(s.at), s.obs)
				var msgs []string
				for _, st := range got {
					msgs = append(msgs, st.String())
				}
				var want []string
				if s.stall != "" {
					want = []string{s.stall}
				}
				if !slices.Equal(msgs, want) {
					t.Errorf("step %d (%v): stalls %q, want %q", i, s.at, msgs, want)
				}
			}
		})
	}
}
