package reconciler

import (
	"runtime"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// TestExpandHugeReplicas expands a state that skipped validation with
// `replicas: 2147483647`: Expand must refuse it with a notice, without
// allocating in proportion to the count (it used to preallocate 2^31 pods
// and take the agent down).
func TestExpandHugeReplicas(t *testing.T) {
	loaded := loadText(t, deployment("web", 1, ""))
	d := loaded.Objects[0].Obj.(*appsv1.Deployment)
	*d.Spec.Replicas = 2147483647
	state := &specs.DesiredState{Objects: loaded.Objects}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, notices := Expand(state, Host{Name: "n1"})
	runtime.ReadMemStats(&after)
	if len(got.Pods) != 0 {
		t.Errorf("pods %q", podNames(got.Pods))
	}
	want := []string{"apps/v1 Deployment default/web: 2147483647 replicas is more than the limit of 10000; not run"}
	if got := noticeStrings(notices); !slices.Equal(got, want) {
		t.Errorf("notices:\n got %q\nwant %q", got, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("Expand allocated %d bytes", alloc)
	}
}
