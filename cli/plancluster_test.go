package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// webDeployment is a Deployment of n replicas of image.
func webDeployment(n int, image string) string {
	return testenv.Deployment{Name: "web", Replicas: n, Container: testenv.Container{Image: image}}.YAML()
}

// viewAgent serves a fixed cluster view, as GET /api/v1/cluster does.
func viewAgent(t *testing.T, view agent.ClusterView) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/cluster" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(view)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestPlanCluster previews candidates against a cluster view: the commit
// in force plans nothing; scaling and a new image show the new replicas'
// hosts and every host's replacements; a dead host's replicas move.
func TestPlanCluster(t *testing.T) {
	clearEnv(t)
	r := testenv.NewGitRepo(t)
	r.Write("web.yaml", webDeployment(4, "busybox:1"))
	c1 := r.Commit("v1")
	now := time.Now()
	view := agent.ClusterView{
		Self: "a", Leader: "a", Term: 2, Now: now, RescheduleAfter: time.Minute,
		Nodes: []scheduler.Node{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Placement: &scheduler.Placement{Term: 2, Seq: 1, Commit: c1, Assignments: map[string]string{
			"default/web-0": "a", "default/web-1": "b", "default/web-2": "c", "default/web-3": "a",
		}},
	}
	srv := viewAgent(t, view)

	res := runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir, "HEAD")
	if res.code != 0 || !strings.Contains(res.stdout, "Placement: no replica moves.") || !strings.Contains(res.stdout, "No changes: host b runs what the manifests describe.") {
		t.Fatalf("plan --cluster of the commit in force: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	r.Write("web.yaml", webDeployment(6, "busybox:2"))
	res = runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir)
	if res.code != 2 {
		t.Fatalf("plan --cluster of the working tree: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{
		"default/web-4 added on b",
		"default/web-5 added on c",
		"Plan for host a:",
		"-/+ replace pod default/web-0",
		"+ create pod default/web-4",
		"Cluster: 2 to create, 0 to update, 4 to replace, 0 to delete on 3 hosts.",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("plan --cluster lacks %q:\n%s", want, res.stdout)
		}
	}

	// Host c died two minutes ago: its replica moves to the least loaded host.
	view.Nodes[2].State, view.Nodes[2].DownSince = scheduler.NodeDead, now.Add(-2*time.Minute)
	srv = viewAgent(t, view)
	res = runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir, "HEAD", "-o", "json")
	var out clusterPlanJSON
	if res.code != 2 || json.Unmarshal([]byte(res.stdout), &out) != nil {
		t.Fatalf("plan --cluster -o json with a dead host: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if out.Replicas["default/web-2"] != "b" || len(out.Moves) != 1 {
		t.Errorf("replicas %v moves %v; want web-2 moved from c to b", out.Replicas, out.Moves)
	}
}
