package agent

import (
	"slices"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/clock/clocktest"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// TestAvailableAt: a host reports a pod available once it runs, is Ready,
// and has been for its workload's minReadySeconds, and says when the next
// one becomes available so that it reports again then.
func TestAvailableAt(t *testing.T) {
	clk := clocktest.New()
	now := clk.Now()
	desired := func(name string, minReady time.Duration) reconciler.Pod {
		return reconciler.Pod{Namespace: "ns", Name: name, Rollout: reconciler.Rollout{Rolling: true, MinReady: minReady}}
	}
	a := &Agent{clock: clk, target: &target{desired: reconciler.Desired{Pods: []reconciler.Pod{
		desired("ds-a", 10*time.Second), desired("ds-b", 10*time.Second), desired("web-0", 0), desired("web-1", 0),
	}}}}
	a.pods = []PodStatus{
		{Namespace: "ns", Name: "ds-a", State: "Running", PodReady: true, ReadySince: now.Add(-11 * time.Second)},
		{Namespace: "ns", Name: "ds-b", State: "Running", PodReady: true, ReadySince: now.Add(-4 * time.Second)},
		{Namespace: "ns", Name: "web-0", State: "Running", PodReady: true, ReadySince: now},
		{Namespace: "ns", Name: "web-1", State: "Running", PodReady: false},
		{Namespace: "ns", Name: "other", State: "Pending", PodReady: true},
	}
	got, wake := a.availableAt(now)
	if want := []string{"ns/ds-a", "ns/web-0"}; !slices.Equal(got, want) {
		t.Errorf("available %v, want %v", got, want)
	}
	if want := now.Add(6 * time.Second); !wake.Equal(want) {
		t.Errorf("next report at %v, want %v (ds-b's minReadySeconds ends)", wake, want)
	}
	got, wake = a.availableAt(now.Add(6 * time.Second))
	if want := []string{"ns/ds-a", "ns/ds-b", "ns/web-0"}; !slices.Equal(got, want) || !wake.IsZero() {
		t.Errorf("6s later: available %v (wake %v), want %v", got, wake, want)
	}
}
