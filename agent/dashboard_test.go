package agent

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDashboardRenders: the page shows the status it is given (repo, ref,
// applied and pending commits, the error with file:line, the pods, the
// last sync) and escapes every value, since commit messages and errors
// come from the repository.
func TestDashboardRenders(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 10, 0, 0, time.UTC)
	applied := "4cea00a295c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0"
	pending := "530fde5dac7e0123456789abcdef0123456789ab"
	syncErr := &SyncError{
		Kind: KindInvalid, Commit: pending, Time: now.Add(-12 * time.Second),
		Message: `commit 530fde5dac7e refused: apps/web.yaml:7:13: spec.replicas: expected integer, got "<script>alert(1)</script>"`,
		Errors: []ManifestError{{File: "apps/web.yaml", Line: 7, Column: 13, Field: "spec.replicas",
			Message: `expected integer, got "<script>alert(1)</script>"`}},
	}
	st := Status{
		Node: "web-1", Repo: []string{"https://git.example.com/site.git"}, Ref: "main", Path: "apps",
		Applied: &AppliedCommit{
			CommitInfo: CommitInfo{Hash: applied, Subject: "scale web", Author: "Ada <ada@example.com>", When: now.Add(-time.Hour)},
			AppliedAt:  now.Add(-3 * time.Minute),
		},
		Pending: &PendingCommit{
			CommitInfo: CommitInfo{Hash: pending, Subject: `<img src=x onerror=alert(2)>`},
			Reason:     KindInvalid, Since: now.Add(-12 * time.Second), Error: syncErr,
		},
		LastError: syncErr,
		LastSync:  &SyncInfo{Seq: 7, Time: now.Add(-12 * time.Second), Reason: "fsnotify refs/heads/main", Result: "refused", Commit: pending, Seconds: 0.02},
		Pods: []PodStatus{
			{Namespace: "default", Name: "web-0", State: "Running", Ready: "1/1", Restarts: 0, IP: "10.244.0.2",
				Containers: []ContainerStatus{{Name: "httpd", State: "Running"}}},
			{Namespace: "default", Name: "db-0", State: "Failed", Ready: "0/1", Restarts: 3, IP: "10.244.0.3",
				Containers: []ContainerStatus{{Name: "db", State: "Exited", ExitCode: 1, Restarts: 3}}},
		},
		Waiting: []string{"default/db-0/db: restart back-off 40s"},
		Notices: []string{"CronJob default/backup: runs nothing now"},
	}
	h := dashboardHandler(func() Status { return st }, func() time.Time { return now })

	code, body := get(t, h, "GET", "/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
	for _, raw := range []string{"<script>", "<img"} {
		if strings.Contains(body, raw) {
			t.Errorf("the page holds unescaped %q:\n%s", raw, body)
		}
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		"web-1", "https://git.example.com/site.git", "main", "apps",
		applied[:12], applied, "scale web", "Ada &lt;ada@example.com&gt;",
		pending[:12], "&lt;img src=x onerror=alert(2)&gt;", "invalid since",
		"apps/web.yaml:7:13: spec.replicas: expected integer, got &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;",
		"2026-05-06T07:09:48Z (12s ago)", "refused", "fsnotify refs/heads/main",
		"web-0", "db-0", "Running", "Failed", "10.244.0.2", "10.244.0.3", "httpd Running", "db Exited (exit 1), 3 restarts",
		"restart back-off 40s", "runs nothing now",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
}

// TestDashboardEmpty: before the first sync the page renders with
// nothing applied and no pods.
func TestDashboardEmpty(t *testing.T) {
	h := dashboardHandler(func() Status {
		return Status{Node: "n", Repo: []string{"/srv/site.git"}, Ref: "main", Path: ".", Pods: []PodStatus{}}
	},
		time.Now)
	code, body := get(t, h, "GET", "/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
	for _, want := range []string{"nothing yet", "No pods.", "not yet", "/srv/site.git"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
}

// TestDashboardRoute: the agent serves the page at GET / and nowhere else;
// other paths stay 404 and other methods are refused.
func TestDashboardRoute(t *testing.T) {
	h := newHarness(t)
	a, err := New(h.cfg, Deps{Source: h.src, Runtime: h.rt})
	if err != nil {
		t.Fatal(err)
	}
	srv := a.Handler()
	code, body := get(t, srv, "GET", "/")
	if code != http.StatusOK || !strings.Contains(body, "<!DOCTYPE html>") {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, newLocalRequest("GET", "/", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET / Content-Type %q", ct)
	}
	for _, path := range []string{"/index.html", "/nope", "/api/v1/", "/hooks/git"} {
		if code, _ := get(t, srv, "GET", path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if code, _ := get(t, srv, "POST", "/"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", code)
	}
}

// TestDashboardCluster: a clustered agent's page shows the leader, the
// quorum, the placement and each member, escaped.
func TestDashboardCluster(t *testing.T) {
	h := dashboardHandler(func() Status {
		return Status{Node: "a", Pods: []PodStatus{}, Cluster: &ClusterStatus{
			Self: "a", Leader: "a", Term: 3,
			Quorum:    QuorumStatus{OK: true, Reason: "quorum: 3 of 3 expected members alive, 2 needed"},
			Guarantee: "one leader",
			Placement: &PlacementStatus{Term: 3, Seq: 9, Leader: "a", Commit: strings.Repeat("c", 40), Replicas: 6,
				Unplaceable: []string{"default/db-0: volume claim <b>x</b> is on node c, which is dead"}},
			Members: []MemberStatus{
				{Name: "a", Addr: "10.0.0.1:7946", State: "alive", Leader: true, Pods: []string{"default/web-0", "default/web-3"}},
				{Name: "c", Addr: "10.0.0.3:7946", State: "dead", Pods: []string{}},
			},
		}}
	}, time.Now)
	code, body := get(t, h, "GET", "/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
	for _, want := range []string{
		"<code>a</code> (this node), term 3", "quorum: 3 of 3 expected members alive",
		"3.9 by <code>a</code>", "cccccccccccc", "6 replicas",
		"unplaceable: default/db-0: volume claim &lt;b&gt;x&lt;/b&gt;", "default/web-0, default/web-3", "10.0.0.3:7946",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<b>x</b>") {
		t.Error("an unplaceable reason was not escaped")
	}
}
