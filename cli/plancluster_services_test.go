package cli

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// svcYAML is a ClusterIP Service selecting app=app with ports.
func svcYAML(name, app, ports string) string {
	return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec:\n  selector: {app: " + app + "}\n  ports: " + ports + "\n"
}

// TestPlanClusterServices previews a candidate's Service changes: a new
// Service (its IP to be allocated), a removed one (its IP released), a
// changed one (ports), and the endpoints a scale-up adds, with the ready
// endpoints the cluster reports now; the candidate's nodePorts are checked
// against the agents' range.
func TestPlanClusterServices(t *testing.T) {
	clearEnv(t)
	r := testenv.NewGitRepo(t)
	r.Write("web.yaml", webDeployment(2, "busybox:1"))
	r.Write("svc.yaml", svcYAML("web", "web", "[{port: 80}]")+"---\n"+svcYAML("old", "web", "[{port: 81}]"))
	c1 := r.Commit("v1")
	alloc, err := netplan.Encode(netplan.State{Term: 2, Seq: 1, Services: map[string]netplan.ServiceAlloc{
		"default/web": {ClusterIP: netip.MustParseAddr("10.96.0.10")},
		"default/old": {ClusterIP: netip.MustParseAddr("10.96.0.11")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	view := agent.ClusterView{
		Self: "a", Leader: "a", Term: 2, Now: time.Now(), RescheduleAfter: time.Minute,
		Nodes:     []scheduler.Node{{Name: "a"}, {Name: "b"}},
		Placement: &scheduler.Placement{Term: 2, Seq: 1, Commit: c1, Assignments: map[string]string{"default/web-0": "a", "default/web-1": "b"}},
		Network:   alloc, NodePortRange: "8000-8999",
		Services: []agent.ServiceStatus{{Namespace: "default", Name: "web", ClusterIP: "10.96.0.10", Endpoints: 2}},
	}
	srv := viewAgent(t, view)

	res := runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir, "HEAD")
	if res.code != 0 || strings.Contains(res.stdout, "Services:") {
		t.Fatalf("plan --cluster of the commit in force: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	r.Write("web.yaml", webDeployment(3, "busybox:1"))
	r.Write("svc.yaml", svcYAML("web", "web", "[{name: http, port: 80}, {name: https, port: 443}]")+"---\n"+svcYAML("api", "web", "[{port: 82}]"))
	res = runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir)
	if res.code != 2 {
		t.Fatalf("plan --cluster: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{
		"Services:\n",
		"  + default/api clusterIP to be allocated\n      ports: 82/TCP\n      selects: web-0, web-1, web-2\n",
		"  - default/old clusterIP 10.96.0.11 (released)\n      ports: 81/TCP\n",
		"  ~ default/web clusterIP 10.96.0.10\n      ports: 80/TCP → http 80/TCP, https 443/TCP\n      endpoints: +web-2\n      selects: web-0, web-1, web-2 (2 ready endpoints now)\n",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("plan --cluster lacks %q:\n%s", want, res.stdout)
		}
	}

	res = runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir, "-o", "json")
	var out clusterPlanJSON
	if res.code != 2 || json.Unmarshal([]byte(res.stdout), &out) != nil {
		t.Fatalf("plan --cluster -o json: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if len(out.Services) != 3 || out.Services[0].Action != netplan.ServiceCreate || out.Services[1].Action != netplan.ServiceDelete ||
		out.Services[2].Action != netplan.ServiceUpdate || out.Services[2].ClusterIP != "10.96.0.10" || out.Services[2].Ready != 2 {
		t.Errorf("services %+v", out.Services)
	}

	// The agents' --service-node-port-range, from the view, applies to the
	// candidate unless the command line gives one.
	r.Write("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  selector: {app: web}\n  ports: [{port: 80, nodePort: 30080}]\n")
	res = runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir)
	if want := "svc.yaml:7:32: spec.ports[0].nodePort: port 30080 is outside the service node port range 8000-8999 (--service-node-port-range)"; res.code != 1 || !strings.Contains(res.stderr, want) {
		t.Errorf("nodePort outside the agents' range: exit %d, want 1 and %q\n%s%s", res.code, want, res.stdout, res.stderr)
	}
	res = runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir, "--service-node-port-range", "30000-32767")
	if res.code != 2 || !strings.Contains(res.stdout, "type: ClusterIP → NodePort") || !strings.Contains(res.stdout, "(node port 30080)") {
		t.Errorf("--service-node-port-range given: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
