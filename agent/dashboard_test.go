package agent

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// hostile is a name an attacker with push access could give anything the
// page shows.
const hostile = `<script>alert(1)</script>`

// dashboardFixture is a status with every section filled: a cluster of
// three (one dead), workloads of each health, a Job and a CronJob, a
// refused commit with a FILE:LINE problem, alerts and notifications, pods,
// a Service and routes. Names carry hostile markup.
func dashboardFixture(now time.Time) (Status, []HistoryEntry) {
	applied := "4cea00a295c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0"
	pending := "530fde5dac7e0123456789abcdef0123456789ab"
	syncErr := &SyncError{
		Kind: KindInvalid, Commit: pending, Time: now.Add(-12 * time.Second),
		Message: `commit 530fde5dac7e refused: apps/web.yaml:7:13: spec.replicas: expected integer, got "` + hostile + `"`,
		Errors: []ManifestError{{File: "apps/web.yaml", Line: 7, Column: 13, Field: "spec.replicas",
			Message: `expected integer, got "` + hostile + `"`}},
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
			{Namespace: "default", Name: "web-0", State: "Running", Ready: "1/1", PodReady: true, Restarts: 0, IP: "10.244.0.2",
				Containers: []ContainerStatus{{Name: "httpd", State: "Running", Ready: true}}},
			{Namespace: "default", Name: "db-0", State: "Failed", Ready: "0/1", Restarts: 3, IP: "10.244.0.3",
				Containers: []ContainerStatus{{Name: "db", State: "Exited", ExitCode: 1, Restarts: 3}}},
		},
		Waiting: []string{"default/db-0/db: restart back-off 40s"},
		Notices: []string{"CronJob default/backup: runs nothing now"},
		Stalled: []RolloutStall{{Workload: "default/api", Message: "rollout stalled: 1 of 2 new pods not ready after 600s"}},
		Workloads: []WorkloadStatus{
			{Kind: "Deployment", Namespace: "default", Name: "web", Desired: 6, Updated: 6, Ready: 6, Health: HealthHealthy},
			{Kind: "Deployment", Namespace: "default", Name: "api", Desired: 2, Updated: 1, Ready: 1, Health: HealthStalled,
				Message: "rollout stalled: 1 of 2 new pods not ready after 600s; the old pods keep serving"},
			{Kind: "DaemonSet", Namespace: "kube-system", Name: hostile, Desired: 3, Updated: 3, Ready: 2, Health: HealthDegraded, Message: "1 of 3 pods not ready"},
			{Kind: "StatefulSet", Namespace: "shop", Name: "pg", Desired: 3, Updated: 1, Ready: 3, Health: HealthHealthy, Partition: 2,
				Message: "1 of 3 pods run the current template (partition 2: ordinals below it keep their revision)"},
		},
		Jobs: []reconciler.JobStatus{{Namespace: "default", Name: "migrate", Condition: "Complete", Completions: 1, Succeeded: 1,
			StartTime: now.Add(-10 * time.Minute)}},
		CronJobs: []reconciler.CronJobStatus{{Namespace: "default", Name: "backup", Schedule: "*/15 * * * *",
			LastScheduleTime: now.Add(-5 * time.Minute), NextScheduleTime: now.Add(10 * time.Minute)}},
		Alerts: []AlertStatus{{Alert: AlertCommitRefused, Since: now.Add(-12 * time.Second),
			Summary: "commit 530fde5dac7e (" + hostile + ") refused on web-1; the host keeps running the last good commit"}},
		Notifications: []NotificationStatus{
			{Time: now.Add(-12 * time.Second), Status: "firing", Alert: AlertCommitRefused, Summary: "commit 530fde5dac7e refused on web-1", Sent: true},
			{Time: now.Add(-time.Hour), Status: "resolved", Alert: AlertCrashLooping, Summary: "container db of pod default/db-0 crash-loops on web-1", Sent: true},
		},
		Services: []ServiceStatus{{Namespace: "default", Name: "web", ClusterIP: "10.96.0.10", Endpoints: 6,
			Ports: []ServicePortStatus{{Protocol: "TCP", Port: 80, NodePort: 30080}}}},
		PodRange: "10.244.0.0/24", Routes: []string{"10.244.1.0/24 via 10.0.0.2"},
		Cluster: &ClusterStatus{
			Self: "web-1", Leader: "web-1", Term: 3,
			Quorum:    QuorumStatus{OK: true, Expect: 3, Alive: 2, Needed: 2, Reason: "quorum: 2 of 3 expected members alive, 2 needed"},
			Guarantee: "one leader",
			Placement: &PlacementStatus{Term: 3, Seq: 9, Leader: "web-1", Commit: applied, Replicas: 9,
				Unplaceable: []string{"default/db-1: volume claim <b>x</b> is on node web-3, which is dead"}},
			Members: []MemberStatus{
				{Name: "web-1", Addr: "10.0.0.1:7946", State: "alive", Leader: true, Commit: applied, PodsRunning: 4, PodsReady: 4, Pods: []string{"default/web-0", "default/web-3"}},
				{Name: "web-2", Addr: "10.0.0.2:7946", State: "alive", Commit: applied, PodsRunning: 4, PodsReady: 3, Pods: []string{"default/web-1", "default/web-4"}},
				{Name: hostile, Addr: "10.0.0.3:7946", State: "dead", Since: now.Add(-2 * time.Minute), Pods: []string{}},
			},
		},
	}
	hist := []HistoryEntry{
		{Time: now.Add(-12 * time.Second), Trigger: "fsnotify refs/heads/main", Commit: pending, Subject: `<img src=x onerror=alert(2)>`,
			Result: "refused", Kind: KindInvalid, Error: syncErr.Message, Seconds: 0.02},
		{Time: now.Add(-3 * time.Minute), Trigger: "poll", Commit: applied, Subject: "scale web", Result: "ok", Seconds: 1.5,
			Actions: []string{"create pod default/web-3", "create pod default/web-4"}},
	}
	return st, hist
}

// TestDashboardRenders: the page shows every section of a full status (the
// summary, the refused commit with FILE:LINE, alerts, the cluster with its
// members and their pods, the workloads with their counts and health, the
// Jobs, the history, the pods, the Services and the network) and escapes
// every value, since names, commit messages and errors come from the
// repository.
func TestDashboardRenders(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 10, 0, 0, time.UTC)
	st, hist := dashboardFixture(now)
	h := dashboardHandler(dashboardSource{status: func() Status { return st }, history: func(int) []HistoryEntry { return hist }, now: func() time.Time { return now }})

	code, body := get(t, h, "GET", "/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
	for _, raw := range []string{"<script", "<img", "<b>x</b>", "style=", "<style"} {
		if strings.Contains(body, raw) {
			t.Errorf("the page holds %q (unescaped markup, or inline style the CSP refuses):\n%s", raw, body)
		}
	}
	for _, id := range []string{"summary", "problem", "alerts", "cluster", "members", "workloads", "history", "pods", "services", "network"} {
		if !strings.Contains(body, `id="`+id+`"`) {
			t.Errorf("the page lacks its %s section", id)
		}
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<link rel="stylesheet" href="static/dashboard.css?v=` + dashboardVersion + `">`,
		"web-1", "https://git.example.com/site.git", "main", "apps",
		applied(st)[:12], "scale web",
		"&lt;img src=x onerror=alert(2)&gt;",
		// the refused commit and its problem, compiler style
		"Commit <code title=\"" + st.Pending.Hash + "\">530fde5dac7e</code> refused: 1 problem",
		"apps/web.yaml:7:13: spec.replicas: expected integer, got &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;",
		"12s ago", "refused", "fsnotify refs/heads/main",
		// alerts
		"KelpieCommitRefused", "1 firing", "KelpieCrashLooping", "resolved",
		// cluster
		"<code>web-1</code> (this node), term 3", "quorum: 2 of 3 expected members alive", "2/3 alive", "leader web-1",
		"3.9 by <code>web-1</code>", "9 replicas", "unplaceable: default/db-1: volume claim &lt;b&gt;x&lt;/b&gt;",
		"default/web-0, default/web-3", "default/web-1, default/web-4", "10.0.0.3:7946", "&lt;script&gt;alert(1)&lt;/script&gt;",
		">dead<",
		// workloads: desired, updated, ready, health
		`<strong>web</strong></td><td class="num">6</td><td class="num">6</td><td class="num">6</td>`,
		`<strong>api</strong></td><td class="num">2</td><td class="num">1</td><td class="num">1</td>`,
		">stalled<", ">degraded<", ">healthy<", "2/4 healthy", "the old pods keep serving",
		`<td>StatefulSet</td><td class="nowrap">shop/<strong>pg</strong></td><td class="num">3</td><td class="num">1</td><td class="num">3</td>`,
		">partition 2<", "4 Deployments, DaemonSets and StatefulSets",
		"default/<strong>migrate</strong>", ">Complete<", "*/15 * * * *",
		// history
		"last 2", "create pod", `<td class="num">2</td>`, "1.5s",
		// pods, services, network
		"web-0", "db-0", "10.244.0.2", "httpd Running", "db Exited (exit 1), 3 restarts", "1/2 ready",
		"restart back-off 40s", "runs nothing now", "80/TCP (node 30080)", "10.244.0.0/24", "10.244.1.0/24 via 10.0.0.2",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}
}

// applied is the applied commit's hash.
func applied(s Status) string { return s.Applied.Hash }

// TestDashboardHeaders: the page and its static files carry a strict CSP
// (no script, styles from the agent only, no framing), nosniff and no
// caching of the page; the stylesheet and icon are served, other static
// names are not.
func TestDashboardHeaders(t *testing.T) {
	h := newHarness(t)
	a, err := New(h.cfg, Deps{Source: h.src, Runtime: h.rt})
	if err != nil {
		t.Fatal(err)
	}
	srv := a.Handler()
	for _, tc := range []struct {
		path, ctype, body string
	}{
		{"/", "text/html; charset=utf-8", "<!DOCTYPE html>"},
		{"/static/dashboard.css", "text/css; charset=utf-8", ".cards"},
		{"/static/favicon.svg", "image/svg+xml", "<svg"},
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, newLocalRequest("GET", tc.path, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("GET %s: %d\n%s", tc.path, rec.Code, rec.Body.String())
		}
		hd := rec.Header()
		for k, want := range map[string]string{
			"Content-Type":            tc.ctype,
			"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := hd.Get(k); got != want {
				t.Errorf("GET %s: %s %q, want %q", tc.path, k, got, want)
			}
		}
		if csp := hd.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
			t.Errorf("GET %s: CSP %q allows more than styles", tc.path, csp)
		}
	}
	if code, _ := get(t, srv, "GET", "/static/nope.js"); code != http.StatusNotFound {
		t.Errorf("GET /static/nope.js: %d, want 404", code)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, newLocalRequest("GET", "/", nil))
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET / Cache-Control %q, want no-store", cc)
	}
	// Every stylesheet and icon the page links is one the agent serves.
	for _, m := range regexp.MustCompile(`href="(static/[^"?]+)`).FindAllStringSubmatch(rec.Body.String(), -1) {
		if code, _ := get(t, srv, "GET", "/"+m[1]); code != http.StatusOK {
			t.Errorf("the page links %s, which is %d", m[1], code)
		}
	}
}

// TestDashboardEmpty: before the first sync the page renders with
// nothing applied, no pods, no workloads and no history.
func TestDashboardEmpty(t *testing.T) {
	h := dashboardHandler(dashboardSource{status: func() Status {
		return Status{Node: "n", Repo: []string{"/srv/site.git"}, Ref: "main", Path: ".", Pods: []PodStatus{}}
	}, now: time.Now})
	code, body := get(t, h, "GET", "/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
	for _, want := range []string{"none yet", "No pods.", "not yet", "/srv/site.git", "single host", "Nothing is wrong.",
		"No Deployment, DaemonSet or StatefulSet", "No sync recorded yet."} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `id="cluster"`) || strings.Contains(body, `id="problem"`) {
		t.Errorf("a lone, healthy agent's page shows a cluster or a problem:\n%s", body)
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
	for _, path := range []string{"/index.html", "/nope", "/api/v1/", "/hooks/git", "/static/", "/static/dashboard.html"} {
		if code, _ := get(t, srv, "GET", path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if code, _ := get(t, srv, "POST", "/"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", code)
	}
}

// TestWorkloadHealth: a workload's health from its counts and stall.
func TestWorkloadHealth(t *testing.T) {
	stall := RolloutStall{Workload: "default/web", Message: "rollout stalled: 1 of 3 new pods not ready after 600s"}
	for _, tc := range []struct {
		name                    string
		desired, updated, ready int
		stall                   RolloutStall
		deployment              bool
		want, msg               string
	}{
		{"all there", 3, 3, 3, RolloutStall{}, true, HealthHealthy, ""},
		{"scaled to zero", 0, 0, 0, RolloutStall{}, true, HealthHealthy, ""},
		{"rolling", 3, 1, 1, RolloutStall{}, true, HealthProgressing, "1 of 3 pods run the current template"},
		{"not ready", 3, 3, 2, RolloutStall{}, false, HealthDegraded, "1 of 3 pods not ready"},
		{"stalled", 3, 2, 2, stall, true, HealthStalled, stall.Message + "; the old pods keep serving"},
		{"a DaemonSet is never stalled", 3, 2, 2, stall, false, HealthProgressing, "2 of 3 pods run the current template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, msg := workloadHealth(WorkloadStatus{Desired: tc.desired, Updated: tc.updated, Ready: tc.ready}, tc.stall, tc.deployment)
			if h != tc.want || msg != tc.msg {
				t.Errorf("health %q %q, want %q %q", h, msg, tc.want, tc.msg)
			}
		})
	}
}
