package agent

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kelpie-dev/kelpie/source"
)

// handler builds the agent's HTTP endpoints.
func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /{$}", dashboardHandler(dashboardSource{status: a.Status, history: a.History, now: a.clock.Now})) // exactly "/": other paths stay 404
	mux.Handle("GET /static/{name}", dashboardStatic())
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("GET /api/v1/cluster", a.clusterView)
	mux.HandleFunc("GET /api/v1/history", a.historyView)
	mux.HandleFunc("POST /api/v1/sync", func(w http.ResponseWriter, _ *http.Request) {
		a.Trigger("api")
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "sync requested"})
	})
	mux.HandleFunc("POST /api/v1/cronjobs/{namespace}/{name}/trigger", a.cronTrigger)
	mux.HandleFunc("GET /api/v1/pods/{namespace}/{name}/log", a.podLog)    // API token or peer token (httpGuard)
	mux.HandleFunc("POST /api/v1/pods/{namespace}/{name}/exec", a.podExec) // the same; an upgraded connection (execwire)
	if a.mirror != nil {
		mux.Handle("/mirror/", a.mirror) // checks the mirror token itself
	}
	if a.cfg.WebhookSecret != "" {
		mux.Handle("/hooks/git", source.WebhookHandler(a.cfg.WebhookSecret, a.triggers))
	}
	return a.guard.wrap(mux)
}

// writeJSON writes v as indented JSON with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}
