package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
)

// historyAgent serves /api/v1/history like an agent, checking the token
// and recording the limit asked for.
type historyAgent struct {
	entries []agent.HistoryEntry
	limit   string
}

func (f *historyAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != "GET" || r.URL.Path != "/api/v1/history" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer history-test-token-0123" {
		http.Error(w, "token", http.StatusUnauthorized)
		return
	}
	f.limit = r.URL.Query().Get("limit")
	json.NewEncoder(w).Encode(f.entries)
}

// TestHistory prints the agent's history for people and as JSON.
func TestHistory(t *testing.T) {
	clearEnv(t)
	now := time.Now()
	fa := &historyAgent{entries: []agent.HistoryEntry{
		{Time: now, Trigger: "api", Commit: strings.Repeat("b", 40), Subject: "broken", Result: "refused", Kind: agent.KindInvalid,
			Error: "commit bbbbbbbbbbbb refused: apps/web.yaml:7:13: spec.replicas: expected integer", Seconds: 0.012},
		{Time: now.Add(-time.Minute), Trigger: "poll", Commit: strings.Repeat("a", 40), Subject: "scale web\n\nbody", Result: "ok", Seconds: 1.5,
			Actions: []string{"create pod default/web-1", "create pod default/web-2"}, More: 3},
		{Time: now.Add(-2 * time.Minute), Trigger: "drift", Result: "failed", Kind: agent.KindObserve, Error: "observe the host: containerd is down"},
	}}
	srv := httptest.NewServer(fa)
	defer srv.Close()

	res := runMain(t, "history", "--agent", srv.URL, "--api-token", "history-test-token-0123", "--limit", "3")
	if res.code != 0 {
		t.Fatalf("history: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if fa.limit != "3" {
		t.Errorf("limit asked: %q, want 3", fa.limit)
	}
	for _, want := range []string{
		"api      refused (invalid)  12ms  no change  bbbbbbbbbbbb broken\n",
		"    commit bbbbbbbbbbbb refused: apps/web.yaml:7:13: spec.replicas: expected integer\n",
		"poll     ok  1.5s  5 actions  aaaaaaaaaaaa scale web\n",
		"    create pod default/web-2\n    … and 3 more\n",
		"drift    failed (observe)  0s  no change  -\n    observe the host: containerd is down\n",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("history lacks %q:\n%s", want, res.stdout)
		}
	}

	res = runMain(t, "history", "-o", "json", "--agent", srv.URL, "--api-token", "history-test-token-0123")
	var got []agent.HistoryEntry
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &got) != nil || len(got) != 3 || got[1].More != 3 || fa.limit != "20" {
		t.Fatalf("history -o json: exit %d, limit %q\n%s%s", res.code, fa.limit, res.stdout, res.stderr)
	}

	res = runMain(t, "history", "--agent", srv.URL)
	if res.code != 1 || !strings.Contains(res.stderr, "--api-token") {
		t.Fatalf("history without the token: exit %d\n%s", res.code, res.stderr)
	}
	res = runMain(t, "history", "--agent", srv.URL, "--limit", "0")
	if res.code != 1 || !strings.Contains(res.stderr, "--limit") {
		t.Fatalf("history --limit 0: exit %d\n%s", res.code, res.stderr)
	}
}
