package agent

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"time"
)

// dashboardRefresh is how often the dashboard page reloads itself, in
// seconds: often enough to watch a push arrive, rarely enough to cost nothing.
const dashboardRefresh = 5

// dashboardHistory is how many sync history entries the dashboard lists.
const dashboardHistory = 15

// dashboardCSP is the dashboard's Content-Security-Policy: nothing but the
// agent's own stylesheet and icon; no script, inline style, frame, form or
// base URL. The page works without script: it reloads itself with a meta
// refresh.
const dashboardCSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed dashboard/dashboard.html dashboard/dashboard.css dashboard/favicon.svg
var dashboardFiles embed.FS

// dashboardAssets are the files served under /static/: their content and
// type.
var dashboardAssets = map[string]struct {
	body  []byte
	ctype string
}{
	"dashboard.css": {mustRead("dashboard/dashboard.css"), "text/css; charset=utf-8"},
	"favicon.svg":   {mustRead("dashboard/favicon.svg"), "image/svg+xml"},
}

// dashboardVersion tells the assets' versions apart in their URLs
// (?v=…), so a browser may cache them and still sees an upgrade's.
var dashboardVersion = func() string {
	h := sha256.New()
	for _, name := range []string{"dashboard.css", "favicon.svg"} {
		h.Write(dashboardAssets[name].body)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// mustRead reads an embedded file.
func mustRead(name string) []byte {
	b, err := dashboardFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// dashboardPage is the read-only page served at GET /. It shows the same
// Status that /api/v1/status returns, and the history of
// /api/v1/history, and decides nothing of its own. html/template escapes
// every value by context: commit subjects, authors, object names and error
// messages come from the repository and are untrusted.
var dashboardPage = template.Must(template.New("dashboard.html").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(t, now time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return ago(now.Sub(t))
	},
	"short":     func(c CommitInfo) string { return c.Short() },
	"shortHash": func(h string) string { return CommitInfo{Hash: h}.Short() },
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"seconds": func(s float64) string {
		return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
	},
	"add": func(a, b int) int { return a + b },
	"health": func(h string) string {
		switch h {
		case HealthHealthy:
			return "ok"
		case HealthStalled:
			return "bad"
		}
		return "warn"
	},
}).ParseFS(dashboardFiles, "dashboard/dashboard.html"))

// dashboardView is what the page template renders: the status, the
// history, and counts the summary shows.
type dashboardView struct {
	S       Status
	History []HistoryEntry
	Now     time.Time
	Refresh int
	Version string

	MembersAlive     int
	WorkloadsHealthy int
	WorkloadsBad     bool
	WorkloadsStalled bool
	PodsRunning      int
	PodsReady        int
}

// newDashboardView counts what the summary shows.
func newDashboardView(s Status, hist []HistoryEntry, now time.Time) dashboardView {
	v := dashboardView{S: s, History: hist, Now: now, Refresh: dashboardRefresh, Version: dashboardVersion}
	if s.Cluster != nil {
		for _, m := range s.Cluster.Members {
			if m.State == "alive" {
				v.MembersAlive++
			}
		}
	}
	for _, w := range s.Workloads {
		switch w.Health {
		case HealthHealthy:
			v.WorkloadsHealthy++
		case HealthStalled:
			v.WorkloadsStalled = true
		}
	}
	v.WorkloadsBad = v.WorkloadsHealthy < len(s.Workloads)
	for _, p := range s.Pods {
		if p.State == "Running" {
			v.PodsRunning++
		}
		if p.PodReady {
			v.PodsReady++
		}
	}
	return v
}

// dashboardSource is what the dashboard shows: the status, the history's
// last n entries (newest first) and the time.
type dashboardSource struct {
	status  func() Status
	history func(n int) []HistoryEntry
	now     func() time.Time
}

// setPageHeaders sets the headers of every dashboard response: the strict
// CSP, no MIME sniffing, no framing, no referrer.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// dashboardHandler serves the dashboard of what src returns. It renders
// into a buffer first, so a template error is a 500 rather than half a
// page.
func dashboardHandler(src dashboardSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var hist []HistoryEntry
		if src.history != nil {
			hist = src.history(dashboardHistory)
		}
		var buf bytes.Buffer
		if err := dashboardPage.Execute(&buf, newDashboardView(src.status(), hist, src.now())); err != nil {
			http.Error(w, "render dashboard: "+err.Error(), http.StatusInternalServerError)
			return
		}
		setPageHeaders(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = buf.WriteTo(w) // the client went away: nothing to do
	})
}

// dashboardStatic serves the dashboard's stylesheet and icon at
// /static/{name}; other names are 404.
func dashboardStatic() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := dashboardAssets[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		setPageHeaders(w)
		w.Header().Set("Content-Type", f.ctype)
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(f.body)
	})
}

// ago says how long d is, coarsely, as people read it: "12s ago", "3m ago".
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return d.Round(time.Second).String() + " ago"
	case d < time.Hour:
		return d.Round(time.Minute).String() + " ago"
	}
	return d.Round(time.Hour).String() + " ago"
}
