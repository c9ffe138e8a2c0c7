package agent

import (
	"testing"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// TestStatefulSetStatus: a StatefulSet's pods are updated at their own
// hash and ready at any revision; pods below the partition, or under
// OnDelete, that keep their revision do not make it progress.
func TestStatefulSetStatus(t *testing.T) {
	pods := func(r reconciler.Rollout) []reconciler.Pod {
		var out []reconciler.Pod
		for i, name := range []string{"db-0", "db-1", "db-2"} {
			out = append(out, reconciler.Pod{Namespace: "shop", Name: name, Ordinal: i, Hash: "new-" + name,
				Owner: reconciler.Owner{Kind: "StatefulSet", Name: "db"}, Rollout: r})
		}
		return out
	}
	report := func(rev map[string]string, avail ...string) hostReport {
		r := hostReport{revisions: map[string]string{}, available: map[string]bool{}}
		for k, v := range rev {
			r.revisions["shop/"+k] = v
		}
		for _, a := range avail {
			r.available["shop/"+a] = true
		}
		return r
	}
	allNew := map[string]string{"db-0": "new-db-0", "db-1": "new-db-1", "db-2": "new-db-2"}
	for _, tc := range []struct {
		name    string
		rollout reconciler.Rollout
		report  hostReport
		want    WorkloadStatus
	}{
		{name: "healthy", report: report(allNew, "db-0", "db-1", "db-2"),
			want: WorkloadStatus{Desired: 3, Updated: 3, Ready: 3, Health: HealthHealthy}},
		{name: "degraded", report: report(allNew, "db-0", "db-1"),
			want: WorkloadStatus{Desired: 3, Updated: 3, Ready: 2, Health: HealthDegraded, Message: "1 of 3 pods not ready"}},
		{name: "rolling from the top", report: report(map[string]string{"db-0": "old", "db-1": "old", "db-2": "new-db-2"}, "db-0", "db-1", "db-2"),
			want: WorkloadStatus{Desired: 3, Updated: 1, Ready: 3, Health: HealthProgressing, Message: "1 of 3 pods run the current template"}},
		{name: "missing pod", report: report(map[string]string{"db-0": "new-db-0"}, "db-0"),
			want: WorkloadStatus{Desired: 3, Updated: 1, Ready: 1, Health: HealthProgressing, Message: "1 of 3 pods run the current template"}},
		{name: "partition holds the lower ordinals", rollout: reconciler.Rollout{Partition: 2},
			report: report(map[string]string{"db-0": "old", "db-1": "old", "db-2": "new-db-2"}, "db-0", "db-1", "db-2"),
			want: WorkloadStatus{Desired: 3, Updated: 1, Ready: 3, Health: HealthHealthy, Partition: 2,
				Message: "1 of 3 pods run the current template (partition 2: ordinals below it keep their revision)"}},
		{name: "OnDelete", rollout: reconciler.Rollout{OnDelete: true},
			report: report(map[string]string{"db-0": "old", "db-1": "old", "db-2": "old"}, "db-0", "db-1"),
			want: WorkloadStatus{Desired: 3, Ready: 2, Health: HealthDegraded, OnDelete: true,
				Message: "1 of 3 pods not ready; 0 of 3 pods run the current template (updateStrategy OnDelete: a pod takes the template once deleted)"}},
	} {
		got := statefulSetStatus(pods(tc.rollout), func(string) hostReport { return tc.report })
		tc.want.Kind, tc.want.Namespace, tc.want.Name = "StatefulSet", "shop", "db"
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}
