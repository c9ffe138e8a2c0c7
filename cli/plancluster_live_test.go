package cli

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
	"github.com/kelpie-dev/kelpie/source"
)

// TestPlanClusterLive asks a running cluster: two agents over real gossip
// on loopback, following a real git repository (fake runtimes stand in for
// containerd), serve GET /api/v1/cluster, and `kelpie plan --cluster`
// previews the working tree against the placement they run.
func TestPlanClusterLive(t *testing.T) {
	clearEnv(t)
	r := testenv.NewGitRepo(t)
	r.Write("web.yaml", webDeployment(2, "busybox:1"))
	r.Commit("v1")
	key, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var agents []*agent.Agent
	join := ""
	for _, name := range []string{"a", "b"} {
		gc := gossip.DefaultConfig()
		gc.NodeName, gc.BindAddr, gc.BindPort, gc.Key = name, "127.0.0.1", 0, key
		gc.Profile, gc.SettlePeriod, gc.Eligible = gossip.ProfileLocal, 300*time.Millisecond, true
		if join != "" {
			gc.Join = []string{join}
		}
		node, err := gossip.New(gc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Shutdown() })
		join = node.Addr()
		state := t.TempDir()
		src, err := source.NewRemote(source.RemoteConfig{URLs: []string{r.Dir}, Ref: "main", CacheDir: filepath.Join(state, "git")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		cfg := agent.DefaultConfig()
		cfg.Repos, cfg.StateDir, cfg.Listen, cfg.Interval = []string{r.Dir}, state, "127.0.0.1:0", time.Second
		cfg.Host = reconciler.Host{Name: name}
		a, err := agent.New(cfg, agent.Deps{Source: src, Runtime: reconcilertest.NewFake(reconciler.Actual{}), Cluster: node})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = a.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		agents = append(agents, a)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := agents[1].Status()
		if s.Cluster != nil && s.Cluster.Placement != nil && s.Cluster.Placement.Replicas == 2 && len(s.Pods) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not place v1: %+v", s.Cluster)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv := httptest.NewServer(agents[1].Handler())
	defer srv.Close()

	res := runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir, "HEAD")
	if res.code != 0 || !strings.Contains(res.stdout, "Cluster of 2 nodes") || !strings.Contains(res.stdout, "Placement: no replica moves.") {
		t.Fatalf("plan --cluster HEAD against the running cluster: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	r.Write("web.yaml", webDeployment(4, "busybox:1"))
	res = runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir)
	if res.code != 2 || !strings.Contains(res.stdout, "default/web-2 added on") || !strings.Contains(res.stdout, "default/web-3 added on") ||
		!strings.Contains(res.stdout, "Cluster: 2 to create, 0 to update, 0 to replace, 0 to delete on 2 hosts.") {
		t.Fatalf("plan --cluster of a scale-up: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
