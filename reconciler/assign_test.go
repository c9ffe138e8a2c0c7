package reconciler

import (
	"reflect"
	"testing"
)

func TestAssigned(t *testing.T) {
	claim := Claim{Namespace: "default", Name: "data"}
	other := Claim{Namespace: "default", Name: "other"}
	idle := Claim{Namespace: "default", Name: "idle"}
	d := Desired{
		Pods: []Pod{
			{Namespace: "default", Name: "web-0", Owner: Owner{Kind: "Deployment", Name: "web"}},
			{Namespace: "default", Name: "web-1", Owner: Owner{Kind: "Deployment", Name: "web"}},
			{Namespace: "default", Name: "db-0", Owner: Owner{Kind: "Deployment", Name: "db"},
				Volumes: []Volume{{Name: "data", Source: claim}}},
			{Namespace: "default", Name: "agent-n1", Owner: Owner{Kind: "DaemonSet", Name: "agent"}},
			{Namespace: "default", Name: "solo", Owner: Owner{Kind: "Pod", Name: "solo"}},
		},
		Networks: []Network{{Name: "sensors"}},
		Claims:   []Claim{claim, other, idle},
	}
	assignments := map[string]string{
		"default/web-0": "n1", "default/web-1": "n2", "default/db-0": "n1", "default/solo": "n2",
	}
	claims := map[string]string{"default/data": "n1", "default/other": "n2"}

	names := func(d Desired) (pods, cls []string) {
		for _, p := range d.Pods {
			pods = append(pods, p.Name)
		}
		for _, c := range d.Claims {
			cls = append(cls, c.Name)
		}
		return
	}
	for _, tc := range []struct {
		node         string
		pods, claims []string
	}{
		{"n1", []string{"web-0", "db-0", "agent-n1"}, []string{"data"}},
		{"n2", []string{"web-1", "agent-n1", "solo"}, []string{"other"}},
		{"n3", []string{"agent-n1"}, nil},
	} {
		got := d.Assigned(tc.node, assignments, claims)
		pods, cls := names(got)
		if !reflect.DeepEqual(pods, tc.pods) || !reflect.DeepEqual(cls, tc.claims) {
			t.Errorf("%s: pods %v claims %v; want %v %v", tc.node, pods, cls, tc.pods, tc.claims)
		}
		if len(got.Networks) != 1 {
			t.Errorf("%s: networks %v, want every network", tc.node, got.Networks)
		}
	}
}
