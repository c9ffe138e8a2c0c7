package scheduler

import (
	"fmt"
	"strings"
	"testing"
)

// TestPaceSurges: the leader allows surges while the Deployment has fewer
// than replicas+maxSurge pods in the cluster, then in-place replacements
// while more than replicas-maxUnavailable replicas serve, in ordinal
// order, counting what it allowed before and its hosts have not done yet.
func TestPaceSurges(t *testing.T) {
	// group builds replicas web-0.. from one word per slot: "o" an
	// available old pod, "x" an old pod that does not serve, "n" a new pod
	// coming up, "N" an available new pod; "" no pod at all.
	group := func(unavailable, surge int, slots ...string) SurgeGroup {
		g := SurgeGroup{Key: "default/web", Replicas: len(slots), MaxUnavailable: unavailable, MaxSurge: surge}
		for i, w := range slots {
			s := SurgeSlot{ID: fmt.Sprintf("default/web-%d", i)}
			for _, c := range w {
				switch c {
				case 'o':
					s.Old++
					s.OldAvailable++
				case 'x':
					s.Old++
				case 'n':
					s.New = true
				case 'N':
					s.New, s.NewAvailable = true, true
				}
			}
			g.Slots = append(g.Slots, s)
		}
		return g
	}
	ids := func(m map[string][]string) string { return strings.Join(m["default/web"], " ") }
	for _, tc := range []struct {
		name                  string
		g                     SurgeGroup
		prevInPlace, prevSurg []string
		inPlace, surge        string
	}{
		{"surge 1, unavailable 0: the first one surges", group(0, 1, "o", "o", "o"), nil, nil, "", "default/web-0"},
		{"surge 2: two surge", group(0, 2, "o", "o", "o"), nil, nil, "", "default/web-0 default/web-1"},
		{"surge 1, unavailable 1: one of each", group(1, 1, "o", "o", "o", "o"), nil, nil, "default/web-1", "default/web-0"},
		{"allowed, not started yet: still allowed, nothing more", group(0, 1, "o", "o", "o"), nil, []string{"default/web-0"}, "", "default/web-0"},
		{"the surge pod comes up beside the old one: nothing more", group(0, 1, "on", "o", "o"), nil, []string{"default/web-0"}, "", ""},
		{"the surge pod is available, the old one not yet gone: nothing more", group(0, 1, "oN", "o", "o"), nil, []string{"default/web-0"}, "", ""},
		{"the old pod is gone: the next one", group(0, 1, "N", "o", "o"), nil, []string{"default/web-0"}, "", "default/web-1"},
		{"an in-place replacement under way uses the unavailability budget", group(1, 1, "n", "o", "o", "o"), []string{"default/web-0"}, nil, "", "default/web-1"},
		{"allowed in place, not stopped yet: still counted", group(1, 1, "o", "o", "o", "o"), []string{"default/web-0"}, []string{"default/web-1"}, "default/web-0", "default/web-1"},
		{"a replica that does not serve needs no permission and takes the budget", group(0, 1, "o", "x", "o"), nil, nil, "", "default/web-0"},
		{"a host down (no pod reported): unavailable, nothing in place", group(1, 1, "o", "", "o", "o"), nil, nil, "", "default/web-0"},
		{"done", group(0, 1, "N", "N", "N"), nil, []string{"default/web-2"}, "", ""},
	} {
		inPlace, surge := PaceSurges([]SurgeGroup{tc.g}, map[string][]string{"default/web": tc.prevInPlace}, map[string][]string{"default/web": tc.prevSurg})
		if ids(inPlace) != tc.inPlace || ids(surge) != tc.surge {
			t.Errorf("%s: in place [%s] surge [%s], want [%s] and [%s]", tc.name, ids(inPlace), ids(surge), tc.inPlace, tc.surge)
		}
	}
}
