package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
)

// fakeAgent serves /api/v1/status and /api/v1/sync like an agent: each
// sync request ends a sync with result.
type fakeAgent struct {
	mu     sync.Mutex
	status agent.Status
	result string
	syncs  int
}

func (f *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/status":
		json.NewEncoder(w).Encode(f.status)
	case r.Method == "POST" && r.URL.Path == "/api/v1/sync":
		f.syncs++
		seq := 1
		if f.status.LastSync != nil {
			seq = f.status.LastSync.Seq + 1
		}
		f.status.LastSync = &agent.SyncInfo{Seq: seq, Time: time.Now(), Reason: "api", Result: f.result, Commit: strings.Repeat("c", 40), Actions: 2}
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

// sampleStatus is a status with a refused commit and two pods.
func sampleStatus() agent.Status {
	now := time.Now()
	return agent.Status{
		Node: "h1", Repo: []string{"/srv/site.git"}, Ref: "main", Path: "apps",
		Applied: &agent.AppliedCommit{CommitInfo: agent.CommitInfo{Hash: strings.Repeat("a", 40), Subject: "scale web", Author: "Ada <ada@example.com>"}, AppliedAt: now.Add(-3 * time.Minute)},
		Pending: &agent.PendingCommit{CommitInfo: agent.CommitInfo{Hash: strings.Repeat("b", 40), Subject: "broken"}, Reason: agent.KindInvalid, Since: now.Add(-12 * time.Second)},
		LastError: &agent.SyncError{Kind: agent.KindInvalid, Commit: strings.Repeat("b", 40), Message: "commit bbbbbbbbbbbb refused: apps/web.yaml:7:13: spec.replicas: expected integer",
			Errors: []agent.ManifestError{{File: "apps/web.yaml", Line: 7, Column: 13, Field: "spec.replicas", Message: "expected integer"}}},
		Pods: []agent.PodStatus{
			{Namespace: "default", Name: "web-0", State: "Running", Ready: "1/1", IP: "10.244.0.2"},
			{Namespace: "default", Name: "web-1", State: "Pending", Ready: "0/1", Restarts: 3},
		},
	}
}

// TestStatus prints the agent's status for people and as JSON.
func TestStatus(t *testing.T) {
	clearEnv(t)
	srv := httptest.NewServer(&fakeAgent{status: sampleStatus()})
	defer srv.Close()

	res := runMain(t, "status", "--agent", srv.URL)
	if res.code != 0 {
		t.Fatalf("status: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{
		"Repo:      /srv/site.git (ref main, path apps)",
		"Applied:   aaaaaaaaaaaa scale web (Ada <ada@example.com>, applied 3m ago)",
		"Pending:   bbbbbbbbbbbb broken (invalid since 12s ago)",
		"Error:     commit bbbbbbbbbbbb does not validate: 1 problem in the manifests (invalid)",
		"  apps/web.yaml:7:13: spec.replicas: expected integer\n",
		"default    web-0  1/1    Running  0         10.244.0.2",
		"default    web-1  0/1    Pending  3         -",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, res.stdout)
		}
	}

	res = runMain(t, "status", "-o", "json", "--agent", strings.TrimPrefix(srv.URL, "http://"))
	var s agent.Status
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &s) != nil || s.LastError == nil || s.LastError.Errors[0].Line != 7 || len(s.Pods) != 2 {
		t.Fatalf("status -o json: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestStatusNoAgent: without an agent, status says how to get one.
func TestStatusNoAgent(t *testing.T) {
	clearEnv(t)
	res := runMain(t, "status", "--agent", freeAddr(t))
	if res.code != 1 || !strings.Contains(res.stderr, "is `kelpie agent` running") {
		t.Fatalf("status without an agent: exit %d\n%s", res.code, res.stderr)
	}
}

// TestSync requests a sync, and with --wait reports its result.
func TestSync(t *testing.T) {
	clearEnv(t)
	fa := &fakeAgent{status: sampleStatus(), result: "ok"}
	srv := httptest.NewServer(fa)
	defer srv.Close()

	res := runMain(t, "sync", "--agent", srv.URL)
	if res.code != 0 || !strings.Contains(res.stdout, "Sync requested") || fa.syncs != 1 {
		t.Fatalf("sync: exit %d, %d syncs\n%s%s", res.code, fa.syncs, res.stdout, res.stderr)
	}
	res = runMain(t, "sync", "--agent", srv.URL, "--wait", "10s")
	if res.code != 0 || !strings.Contains(res.stdout, "Sync ok: commit cccccccccccc, 2 actions.") {
		t.Fatalf("sync --wait: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	fa.mu.Lock()
	fa.result = "refused"
	fa.mu.Unlock()
	res = runMain(t, "sync", "--agent", srv.URL, "--wait", "10s")
	if res.code != 1 || !strings.Contains(res.stdout, "Sync refused") || !strings.Contains(res.stderr, "apps/web.yaml:7:13") {
		t.Fatalf("sync --wait, refused: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestAgentNeedsRepo: the agent refuses to start without a repository.
func TestAgentNeedsRepo(t *testing.T) {
	clearEnv(t)
	res := runMain(t, "agent", "--node-name", "h1")
	if res.code != 1 || !strings.Contains(res.stderr, "flag --repo is required") {
		t.Fatalf("agent without --repo: exit %d\n%s", res.code, res.stderr)
	}
}

// TestAgentContainerLogFlags: log bounds that bound nothing are refused,
// naming the flag, before anything starts.
func TestAgentContainerLogFlags(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct{ args []string }{
		{[]string{"--container-log-max-size", "10"}},
		{[]string{"--container-log-max-size", "lots"}},
		{[]string{"--container-log-max-files", "1"}},
	} {
		args := append([]string{"agent", "--node-name", "h1", "--repo", t.TempDir(), "--state-dir", t.TempDir()}, tc.args...)
		res := runMain(t, args...)
		if res.code != 1 || !strings.Contains(res.stderr, "for flag "+tc.args[0]) {
			t.Errorf("agent %v: exit %d\n%s", tc.args, res.code, res.stderr)
		}
	}
}
