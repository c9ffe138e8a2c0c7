package agent

import (
	"bytes"
	"html/template"
	"net/http"
	"time"
)

// dashboardRefresh is how often the dashboard page reloads itself, in
// seconds: often enough to watch a push arrive, rarely enough to cost nothing.
const dashboardRefresh = 5

// dashboardPage is the read-only page served at GET /. It shows the same
// Status that /api/v1/status returns and decides nothing of its own.
// html/template escapes every value by context: commit subjects, authors
// and error messages come from the repository and are untrusted.
var dashboardPage = template.Must(template.New("dashboard").Funcs(template.FuncMap{
	"when": func(t time.Time, now time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format(time.RFC3339) + " (" + ago(now.Sub(t)) + ")"
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
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>kelpie · {{.S.Node}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse}td,th{padding:.2em .8em .2em 0;text-align:left;vertical-align:top}
th{color:#555;font-weight:600}code{font:13px ui-monospace,monospace}
.ok{color:#176f2c}.bad{color:#b00020}.warn{color:#8a5a00}
pre{background:#f5f5f5;padding:.5em;white-space:pre-wrap}
</style>
</head>
<body>
<h1>kelpie agent on {{.S.Node}}</h1>
<table>
<tr><th>Repo</th><td>{{range $i, $r := .S.Repo}}{{if $i}}, {{end}}<code>{{$r}}</code>{{end}}</td></tr>
<tr><th>Ref</th><td><code>{{.S.Ref}}</code> (path <code>{{.S.Path}}</code>)</td></tr>
<tr><th>Applied</th><td>{{with .S.Applied}}<code class="ok" title="{{.Hash}}">{{short .CommitInfo}}</code> {{.Subject}} ({{.Author}}, applied {{when .AppliedAt $.Now}}){{else}}nothing yet{{end}}</td></tr>
<tr><th>Pending</th><td>{{with .S.Pending}}<code class="warn" title="{{.Hash}}">{{short .CommitInfo}}</code> {{.Subject}} ({{.Reason}} since {{when .Since $.Now}}){{else}}none: the host runs the head{{end}}</td></tr>
<tr><th>Last sync</th><td>{{with .S.LastSync}}{{when .Time $.Now}}: <span class="{{if eq .Result "ok"}}ok{{else}}bad{{end}}">{{.Result}}</span> ({{.Reason}}), {{.Actions}} {{plural .Actions "action" "actions"}} in {{seconds .Seconds}}{{else}}not yet{{end}}</td></tr>
</table>
{{with .S.LastError}}
<h2 class="bad">Last error ({{.Kind}}{{if .Commit}}, commit <code title="{{.Commit}}">{{shortHash .Commit}}</code>{{end}}, {{when .Time $.Now}})</h2>
<pre>{{.Message}}</pre>
{{if .Errors}}<ul>{{range .Errors}}<li><code>{{.String}}</code></li>{{end}}</ul>{{end}}
{{end}}
{{with .S.Cluster}}
<h2>Cluster</h2>
<table>
<tr><th>Leader</th><td>{{if .Leader}}<code>{{.Leader}}</code>{{if eq .Leader .Self}} (this node){{end}}, term {{.Term}}{{else}}<span class="warn">none yet</span>{{end}}</td></tr>
<tr><th>Quorum</th><td class="{{if .Quorum.OK}}ok{{else}}bad{{end}}">{{.Quorum.Reason}}</td></tr>
<tr><th>Guarantee</th><td>{{.Guarantee}}</td></tr>
<tr><th>Placement</th><td>{{with .Placement}}{{.Term}}.{{.Seq}} by <code>{{.Leader}}</code>, commit <code title="{{.Commit}}">{{shortHash .Commit}}</code>, {{.Replicas}} {{plural .Replicas "replica" "replicas"}}{{else}}<span class="warn">none yet</span>{{end}}</td></tr>
{{if .Note}}<tr><th>Note</th><td class="warn">{{.Note}}</td></tr>{{end}}
</table>
{{with .Placement}}{{if .Unplaceable}}<ul>{{range .Unplaceable}}<li class="bad">unplaceable: {{.}}</li>{{end}}</ul>{{end}}{{if .Waiting}}<ul>{{range .Waiting}}<li class="warn">waiting: {{.}}</li>{{end}}</ul>{{end}}{{end}}
<table>
<tr><th>Member</th><th>Address</th><th>State</th><th>Commit</th><th>Running</th><th>Ready</th><th>Placed</th></tr>
{{range .Members}}<tr><td>{{.Name}}{{if .Leader}} ★{{end}}</td><td><code>{{.Addr}}</code></td><td class="{{if eq .State "alive"}}ok{{else}}bad{{end}}">{{.State}}</td><td><code>{{shortHash .Commit}}</code></td><td>{{.PodsRunning}}</td><td>{{.PodsReady}}</td><td>{{range $i, $p := .Pods}}{{if $i}}, {{end}}{{$p}}{{end}}</td></tr>
{{end}}</table>
{{end}}
<h2>Pods ({{len .S.Pods}})</h2>
{{if .S.Pods}}<table>
<tr><th>Namespace</th><th>Pod</th><th>Phase</th><th>Ready</th><th>Restarts</th><th>IP</th><th>Containers</th></tr>
{{range .S.Pods}}<tr><td>{{.Namespace}}</td><td>{{.Name}}</td><td class="{{if eq .State "Running" "Succeeded"}}ok{{else if eq .State "Failed"}}bad{{else}}warn{{end}}">{{.State}}</td><td class="{{if .PodReady}}ok{{else}}warn{{end}}">{{.Ready}}{{if not .PodReady}} not ready{{end}}</td><td>{{.Restarts}}</td><td><code>{{.IP}}</code></td><td>{{range $i, $c := .Containers}}{{if $i}}, {{end}}{{$c.Name}} {{$c.State}}{{if and (eq $c.State "Running") (not $c.Ready)}} (not ready){{end}}{{if $c.ExitCode}} (exit {{$c.ExitCode}}){{end}}{{if $c.Restarts}}, {{$c.Restarts}} restarts{{end}}{{end}}</td></tr>
{{end}}</table>{{else}}<p>No pods.</p>{{end}}
{{if .S.Stalled}}<h2>Stalled rollouts</h2><ul>{{range .S.Stalled}}<li class="bad">Deployment {{.Workload}}: {{.Message}} (old pods keep serving)</li>{{end}}</ul>{{end}}
{{if .S.Waiting}}<h2>Waiting</h2><ul>{{range .S.Waiting}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .S.Notices}}<h2>Notices</h2><ul>{{range .S.Notices}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p><small>Rendered {{.Now.UTC.Format "2006-01-02T15:04:05Z07:00"}}; reloads every {{.Refresh}}s. JSON: <a href="api/v1/status">/api/v1/status</a>, metrics: <a href="metrics">/metrics</a>.</small></p>
</body>
</html>
`))

// dashboardView is what the page template renders.
type dashboardView struct {
	S       Status
	Now     time.Time
	Refresh int
}

// dashboardHandler serves the dashboard of the status that status returns
// at the time now returns. It renders into a buffer first, so a template
// error is a 500 rather than half a page.
func dashboardHandler(status func() Status, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var buf bytes.Buffer
		if err := dashboardPage.Execute(&buf, dashboardView{S: status(), Now: now(), Refresh: dashboardRefresh}); err != nil {
			http.Error(w, "render dashboard: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = buf.WriteTo(w) // the client went away: nothing to do
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
