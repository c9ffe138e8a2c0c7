package netplan

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// planned formats changes one a line: the change, its ports, its changes
// and what it selects.
func planned(cs []ServiceChange) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String() + " [" + strings.Join(c.Ports, ", ") + "]")
		for _, ch := range c.Changes {
			b.WriteString("; " + ch)
		}
		if len(c.Selects) > 0 {
			b.WriteString("; selects " + strings.Join(c.Selects, ","))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestPlanServices(t *testing.T) {
	alloc := &State{Services: map[string]ServiceAlloc{
		"default/web":  held("10.96.0.10"),
		"default/old":  held("10.96.0.11"),
		"default/np":   held("10.96.0.12", "80/TCP", 30080),
		"default/same": held("10.96.0.13"),
		"default/dns":  held("headless"),
	}, Released: []Released{{Service: "default/back", IP: ip("10.96.0.20")}}}
	web := pod("default/web-0", "web", "n1", "10.244.0.2")
	web1 := pod("default/web-1", "web", "n2", "10.244.1.2")
	other := pod("other/web-9", "web", "n1", "10.244.0.3")
	for _, tc := range []struct {
		name            string
		cur, cand       []*corev1.Service
		curPods, cnPods []Pod
		want            string
	}{
		{"nothing changes",
			[]*corev1.Service{service("default/same")}, []*corev1.Service{service("default/same")},
			[]Pod{web}, []Pod{web}, ""},
		{"new Services: allocated by the leader, from the manifest, headless",
			nil, []*corev1.Service{service("default/web"), service("default/fixed", withIP("10.96.0.50")), service("default/pods", headless()), service("default/np2", nodePort(0)), service("default/back")},
			nil, []Pod{web, web1, other},
			"+ default/back clusterIP 10.96.0.20 (taken back from quarantine) [http 80/TCP→8080]\n" +
				"+ default/fixed clusterIP 10.96.0.50 (from the manifest) [http 80/TCP→8080]\n" +
				"+ default/np2 clusterIP to be allocated [http 80/TCP→8080 (node port to be allocated)]\n" +
				"+ default/pods clusterIP None [http 80/TCP→8080]\n" +
				"+ default/web clusterIP 10.96.0.10 [http 80/TCP→8080]; selects web-0,web-1\n"},
		{"removed Service releases its IP",
			[]*corev1.Service{service("default/old"), service("default/dns", headless())}, nil,
			nil, nil,
			"- default/dns clusterIP None [http 80/TCP→8080]\n- default/old clusterIP 10.96.0.11 (released) [http 80/TCP→8080]\n"},
		{"ports, type and selector change",
			[]*corev1.Service{service("default/web"), service("default/np", nodePort(0))},
			[]*corev1.Service{service("default/web", withPorts(corev1.ServicePort{Port: 81, Protocol: corev1.ProtocolUDP}), func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "api"} }), service("default/np")},
			[]Pod{web}, []Pod{web},
			"~ default/np clusterIP 10.96.0.12 [http 80/TCP→8080]; type: NodePort → ClusterIP; ports: http 80/TCP→8080 (node port 30080) → http 80/TCP→8080\n" +
				"~ default/web clusterIP 10.96.0.10 [81/UDP]; ports: http 80/TCP→8080 → 81/UDP; selector: {app=web} → {app=api}; endpoints: -web-0\n"},
		{"clusterIP set in the manifest",
			[]*corev1.Service{service("default/web")}, []*corev1.Service{service("default/web", withIP("10.96.0.99"))},
			nil, nil,
			"~ default/web clusterIP 10.96.0.99 (from the manifest) [http 80/TCP→8080]; clusterIP: (unset) → 10.96.0.99\n"},
		{"endpoints follow the placement",
			[]*corev1.Service{service("default/web")}, []*corev1.Service{service("default/web")},
			[]Pod{web}, []Pod{web1, other},
			"~ default/web clusterIP 10.96.0.10 [http 80/TCP→8080]; endpoints: +web-1 -web-0; selects web-1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PlanServices(PlanServicesInput{Current: tc.cur, Candidate: tc.cand, Alloc: alloc, CurrentPods: tc.curPods, CandidatePods: tc.cnPods,
				Ready: map[string]int{"default/web": 1}})
			if s := planned(got); s != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", s, tc.want)
			}
		})
	}
}

// The ready endpoint count comes from the cluster's status, -1 when it did
// not report the Service; the change encodes as the JSON plan shows it.
func TestPlanServicesReady(t *testing.T) {
	got := PlanServices(PlanServicesInput{Current: []*corev1.Service{service("default/web"), service("default/api")},
		CurrentPods: []Pod{pod("default/web-0", "web", "n1", "10.244.0.2"), pod("default/api-0", "api", "n1", "10.244.0.3")},
		Ready:       map[string]int{"default/web": 2}})
	if len(got) != 2 || got[0].Ready != -1 || got[1].Ready != 2 {
		t.Fatalf("changes %+v; want api ready -1, web ready 2", got)
	}
	b, err := json.Marshal(got[1])
	if err != nil || string(b) != `{"action":"delete","service":"default/web","clusterIP":"to be allocated","ports":["http 80/TCP→8080"],"ready":2}` {
		t.Errorf("json %s, %v", b, err)
	}
}
