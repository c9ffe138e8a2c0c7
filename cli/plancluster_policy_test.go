package cli

import (
	"context"
	"net/http/httptest"
	"os/exec"
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

// liveCluster is a cluster of agents over real gossip on loopback, each
// following a real git repository with a fake runtime standing in for
// containerd.
type liveCluster struct {
	t    *testing.T
	key  string
	join string
}

// start starts agent name following the repository at repo.
func (lc *liveCluster) start(name, repo string) *agent.Agent {
	t := lc.t
	t.Helper()
	gc := gossip.DefaultConfig()
	gc.NodeName, gc.BindAddr, gc.BindPort, gc.Key = name, "127.0.0.1", 0, lc.key
	gc.Profile, gc.SettlePeriod, gc.Eligible = gossip.ProfileLocal, 300*time.Millisecond, true
	if lc.join != "" {
		gc.Join = []string{lc.join}
	}
	node, err := gossip.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Shutdown() })
	if lc.join == "" {
		lc.join = node.Addr()
	}
	state := t.TempDir()
	src, err := source.NewRemote(source.RemoteConfig{URLs: []string{repo}, Ref: "main", CacheDir: filepath.Join(state, "git")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	cfg := agent.DefaultConfig()
	cfg.Repos, cfg.StateDir, cfg.Listen, cfg.Interval = []string{repo}, state, "127.0.0.1:0", time.Second
	cfg.Host = reconciler.Host{Name: name}
	a, err := agent.New(cfg, agent.Deps{Source: src, Runtime: reconcilertest.NewFake(reconciler.Actual{}), Cluster: node})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// waitStatus polls a's status until ok holds, or fails the test.
func waitStatus(t *testing.T, a *agent.Agent, what string, ok func(agent.Status) bool) agent.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := a.Status()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %+v, cluster %+v", what, s, s.Cluster)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPlanClusterRefusesAsTheLeader: `kelpie plan --cluster` decides with
// the leader's own policy, so it refuses what the running leader refuses,
// with the leader's message: a commit that gives the cluster no pods, and
// a commit that does not descend from the cluster's (the guard that keeps
// a leader whose source lags from rolling the cluster back).
func TestPlanClusterRefusesAsTheLeader(t *testing.T) {
	clearEnv(t)
	r := testenv.NewGitRepo(t)
	r.Write("web.yaml", webDeployment(2, "busybox:0"))
	c0 := r.Commit("v0")
	r.Write("web.yaml", webDeployment(2, "busybox:1"))
	c1 := r.Commit("v1")
	key, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	lc := &liveCluster{t: t, key: key}
	a := lc.start("a", r.Dir)
	b := lc.start("b", r.Dir)
	waitStatus(t, b, "the cluster did not place v1", func(s agent.Status) bool {
		return s.Cluster != nil && s.Cluster.Placement != nil && s.Cluster.Placement.Commit == c1 && len(s.Pods) == 1
	})
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()

	// An empty commit: the leader refuses it, and so does the preview.
	r.Git("rm", "-q", "web.yaml")
	r.Write("config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: quiet\n")
	empty := r.Commit("remove the web deployment")
	a.Trigger("test")
	s := waitStatus(t, a, "the leader did not refuse the empty commit", func(s agent.Status) bool {
		return s.LastError != nil && s.LastError.Kind == agent.KindEmpty && s.LastError.Commit == empty
	})
	leaderSays := s.LastError.Message
	want := "commit " + empty[:12] + " refused: it gives the cluster no pods while 2 run (start the agents with --allow-empty to allow it)"
	if leaderSays != want {
		t.Errorf("the leader says %q, want %q", leaderSays, want)
	}
	res := runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir, "HEAD")
	if res.code != 1 || !strings.Contains(res.stderr, leaderSays) {
		t.Errorf("plan --cluster of the empty commit: exit %d, want 1 and the leader's %q\n%s%s", res.code, leaderSays, res.stdout, res.stderr)
	}

	// A commit that does not descend from the cluster's: a host whose
	// repository lags (a clone still at v0) joins, sorts first, leads, and
	// refuses to place its head; the preview of v0 refuses it alike.
	stale := t.TempDir()
	for _, args := range [][]string{{"clone", "-q", r.Dir, stale}, {"-C", stale, "reset", "-q", "--hard", c0}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	first := lc.start("0", stale)
	s = waitStatus(t, first, "the stale host did not lead and refuse its head", func(s agent.Status) bool {
		return s.Cluster != nil && s.Cluster.Leader == "0" && strings.Contains(s.Cluster.Note, "does not descend")
	})
	leaderSays = s.Cluster.Note
	want = "commit " + c0[:12] + " does not descend from the cluster's commit " + c1[:12] + "; not placed"
	if leaderSays != want {
		t.Errorf("the leader says %q, want %q", leaderSays, want)
	}
	res = runMain(t, "plan", "--cluster", "--agent", srv.URL, "--repo", r.Dir, c0)
	if res.code != 1 || !strings.Contains(res.stderr, leaderSays) {
		t.Errorf("plan --cluster of an older commit: exit %d, want 1 and the leader's %q\n%s%s", res.code, leaderSays, res.stdout, res.stderr)
	}
	if p := b.Status().Cluster.Placement; p == nil || p.Commit != c1 {
		t.Errorf("the placement in force is %+v, want commit %s still", p, c1)
	}
}
