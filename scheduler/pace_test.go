package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

// TestPaceRollouts: the leader allows at most maxUnavailable replicas of a
// Deployment to be down or being replaced in the whole cluster, the next
// ones in ordinal order, and nothing once all run the new template.
func TestPaceRollouts(t *testing.T) {
	// state builds 4 replicas web-0..3 from flags "u" (updated) and "a"
	// (available): e.g. "ua", "a", "", "u".
	state := func(maxUnavailable int, flags ...string) RolloutGroup {
		g := RolloutGroup{Key: "default/web", MaxUnavailable: maxUnavailable}
		for i, f := range flags {
			g.Replicas = append(g.Replicas, RolloutReplica{ID: fmt.Sprintf("default/web-%d", i),
				Updated: slices.Contains([]rune(f), 'u'), Available: slices.Contains([]rune(f), 'a')})
		}
		return g
	}
	for _, tc := range []struct {
		name string
		g    RolloutGroup
		prev []string
		want []string
	}{
		{"start: the first one", state(1, "a", "a", "a", "a"), nil, []string{"default/web-0"}},
		{"budget 2: the first two", state(2, "a", "a", "a", "a"), nil, []string{"default/web-0", "default/web-1"}},
		{"allowed, not yet replaced: still allowed, nothing more", state(1, "a", "a", "a", "a"), []string{"default/web-0"}, []string{"default/web-0"}},
		{"being replaced (down): nothing more", state(1, "", "a", "a", "a"), []string{"default/web-0"}, []string{"default/web-0"}},
		{"replaced, coming up (updated, not ready): nothing more", state(1, "u", "a", "a", "a"), []string{"default/web-0"}, nil},
		{"replaced and ready: the next", state(1, "ua", "a", "a", "a"), []string{"default/web-0"}, []string{"default/web-1"}},
		{"another replica down: no budget", state(1, "ua", "a", "", "a"), nil, nil},
		{"done", state(1, "ua", "ua", "ua", "ua"), []string{"default/web-3"}, nil},
	} {
		got := PaceRollouts([]RolloutGroup{tc.g}, map[string][]string{"default/web": tc.prev})
		want := map[string][]string{}
		if tc.want != nil {
			want["default/web"] = tc.want
		}
		if !maps.EqualFunc(got, want, slices.Equal[[]string]) {
			t.Errorf("%s: allowed %v, want %v", tc.name, got, want)
		}
	}
}
