package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestDaemonSetMaxUnavailable: an integer is taken as it is, a percentage
// of the hosts that run the DaemonSet rounds up, and the budget is never
// below 1.
func TestDaemonSetMaxUnavailable(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int) *intstr.IntOrString { v := intstr.FromInt32(int32(n)); return &v }
	for _, tc := range []struct {
		name  string
		v     *intstr.IntOrString
		hosts int
		want  int
	}{
		{"default", nil, 5, 1},
		{"integer", num(2), 5, 2},
		{"zero (a surge kelpie cannot make)", num(0), 5, 1},
		{"10% of 5 rounds up", pct("10%"), 5, 1},
		{"50% of 5 rounds up", pct("50%"), 5, 3},
		{"100% of 3", pct("100%"), 3, 3},
		{"0% of 4", pct("0%"), 4, 1},
		{"no host", pct("25%"), 0, 1},
		{"not a percentage", pct("x"), 4, 1},
	} {
		if got := DaemonSetMaxUnavailable(tc.v, tc.hosts); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestPaceDaemonSet: a DaemonSet on 4 hosts is paced host after host
// within its budget, under a key of its own, in the order of its pods'
// names; a host whose pod is down costs the budget.
func TestPaceDaemonSet(t *testing.T) {
	hosts := []string{"d", "b", "a", "c"} // out of order: the group sorts them
	state := func(flags ...string) []RolloutReplica {
		var out []RolloutReplica
		for i, f := range flags {
			out = append(out, RolloutReplica{ID: "kube-system/agent-" + hosts[i],
				Updated: slices.Contains([]rune(f), 'u'), Available: slices.Contains([]rune(f), 'a')})
		}
		return out
	}
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	const key = "DaemonSet/kube-system/agent"
	for _, tc := range []struct {
		name string
		max  *intstr.IntOrString
		pods []RolloutReplica
		prev []string
		want []string
	}{
		{"start: the first host by name", nil, state("a", "a", "a", "a"), nil, []string{"kube-system/agent-a"}},
		{"50% of 4: two hosts", pct("50%"), state("a", "a", "a", "a"), nil, []string{"kube-system/agent-a", "kube-system/agent-b"}},
		{"being replaced: nothing more", nil, state("a", "a", "", "a"), []string{"kube-system/agent-a"}, []string{"kube-system/agent-a"}},
		{"replaced, not available yet (minReadySeconds): nothing more", nil, state("a", "a", "u", "a"), []string{"kube-system/agent-a"}, nil},
		{"replaced and available: the next host", nil, state("a", "a", "ua", "a"), []string{"kube-system/agent-a"}, []string{"kube-system/agent-b"}},
		{"another host's pod down: no budget", nil, state("", "a", "ua", "a"), nil, nil},
		{"done", nil, state("ua", "ua", "ua", "ua"), nil, nil},
	} {
		g := DaemonSetGroup("kube-system/agent", tc.max, tc.pods)
		got := PaceRollouts([]RolloutGroup{g}, map[string][]string{key: tc.prev})
		want := map[string][]string{}
		if tc.want != nil {
			want[key] = tc.want
		}
		if !maps.EqualFunc(got, want, slices.Equal[[]string]) {
			t.Errorf("%s: allowed %v, want %v", tc.name, got, want)
		}
	}
}

// TestPaceDaemonSetNeverOverBudget walks a rollout of n hosts to its end,
// each allowed host replacing its pod and the pod becoming available one
// step later, and checks that no step has more than the budget of hosts
// down or coming up.
func TestPaceDaemonSetNeverOverBudget(t *testing.T) {
	for _, tc := range []struct {
		hosts int
		max   string
		want  int
	}{{3, "1", 1}, {5, "40%", 2}, {7, "100%", 7}} {
		t.Run(fmt.Sprintf("%d hosts, maxUnavailable %s", tc.hosts, tc.max), func(t *testing.T) {
			v := intstr.Parse(tc.max)
			pods := make([]RolloutReplica, tc.hosts)
			for i := range pods {
				pods[i] = RolloutReplica{ID: fmt.Sprintf("ns/ds-h%d", i), Available: true}
			}
			var prev []string
			maxDown := 0
			for step := 0; step < 4*tc.hosts; step++ {
				down := 0
				for _, p := range pods {
					if !p.Available || slices.Contains(prev, p.ID) && !p.Updated {
						down++
					}
				}
				maxDown = max(maxDown, down)
				allowed := PaceRollouts([]RolloutGroup{DaemonSetGroup("ns/ds", &v, pods)}, map[string][]string{DaemonSetRolloutKey("ns/ds"): prev})
				prev = allowed[DaemonSetRolloutKey("ns/ds")]
				for i := range pods { // a pod replaced at the previous step comes up; an allowed one is replaced
					switch {
					case pods[i].Updated:
						pods[i].Available = true
					case slices.Contains(prev, pods[i].ID):
						pods[i].Updated, pods[i].Available = true, false
					}
				}
			}
			for _, p := range pods {
				if !p.Updated || !p.Available {
					t.Fatalf("%s not rolled out: %+v", p.ID, p)
				}
			}
			if maxDown != tc.want {
				t.Errorf("at most %d hosts down at once, want %d", maxDown, tc.want)
			}
		})
	}
}
