package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// newLocalRequest is httptest.NewRequest as a local client sends it: to
// the agent's default loopback address (httptest's own default Host,
// example.com, is refused on a loopback listener).
func newLocalRequest(method, target string, body io.Reader) *http.Request {
	r := httptest.NewRequest(method, target, body)
	r.Host = DefaultListen
	return r
}

// get performs a request against h and returns the status code and body.
func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	return do(h, newLocalRequest(method, path, nil))
}

// do serves r and returns the status code and body.
func do(h http.Handler, r *http.Request) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// TestHTTPEndpoints: health, status JSON, metrics, sync and the webhook
// mount.
func TestHTTPEndpoints(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1: web", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	srv := h.agent.Handler()

	if code, body := get(t, srv, "GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}

	code, body := get(t, srv, "GET", "/api/v1/status")
	if code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, body)
	}
	for _, key := range []string{"node", "repo", "ref", "path", "applied", "pending", "lastError", "lastSync", "pods", "waiting", "notices"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("status lacks %q:\n%s", key, body)
		}
	}
	applied, _ := doc["applied"].(map[string]any)
	if applied["commit"] != v1.Hash || applied["subject"] != "v1: web" || applied["time"] == nil || applied["appliedAt"] == nil {
		t.Errorf("status applied: %v", applied)
	}
	pods, _ := doc["pods"].([]any)
	if len(pods) != 1 {
		t.Fatalf("status pods: %v", doc["pods"])
	}
	pod := pods[0].(map[string]any)
	for _, key := range []string{"namespace", "name", "containers", "state", "restarts", "ip"} {
		if _, ok := pod[key]; !ok {
			t.Errorf("status pod lacks %q: %v", key, pod)
		}
	}

	code, body = get(t, srv, "GET", "/metrics")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, name := range []string{
		`kelpie_sync_total{result="ok"} 1`, `kelpie_last_sync_timestamp_seconds`,
		`kelpie_applied_commit_info{commit="` + v1.Hash + `"} 1`, `kelpie_reconcile_duration_seconds_bucket`, `kelpie_sync_phase_duration_seconds_count{phase="fetch"} 1`, `kelpie_sync_phase_duration_seconds_count{phase="apply"} 1`,
		`kelpie_pods{phase="Running"} 1`, `kelpie_errors_total`, `go_goroutines`,
	} {
		if !strings.Contains(body, name) {
			t.Errorf("metrics lack %s", name)
		}
	}

	if code, _ := get(t, srv, "GET", "/api/v1/sync"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/v1/sync: %d, want 405", code)
	}
	seq := h.seq()
	if code, body := get(t, srv, "POST", "/api/v1/sync"); code != http.StatusUnauthorized {
		t.Errorf("POST /api/v1/sync without the API token: %d %s, want 401", code, body)
	}
	req := newLocalRequest("POST", "/api/v1/sync", nil)
	req.Header.Set("Authorization", "Bearer "+h.agent.guard.token)
	if code, body := do(srv, req); code != http.StatusAccepted {
		t.Errorf("POST /api/v1/sync: %d %s", code, body)
	}
	if s := h.waitSync(seq); s.LastSync.Reason != "api" {
		t.Errorf("sync reason %q, want api", s.LastSync.Reason)
	}

	if code, _ := get(t, srv, "POST", "/hooks/git"); code != http.StatusNotFound {
		t.Errorf("/hooks/git without a secret: %d, want 404", code)
	}
}

// TestHTTPWebhook: with a secret, /hooks/git is source's webhook handler
// on the agent's trigger queue: a bad signature gets 401 and syncs
// nothing, a good one 202 and a sync.
func TestHTTPWebhook(t *testing.T) {
	h := newHarness(t)
	h.cfg.WebhookSecret = "s3cret"
	v1 := h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	srv := h.agent.Handler()

	body := `{"ref":"refs/heads/main"}`
	post := func(secret string) int {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		req := newLocalRequest("POST", "/hooks/git", strings.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code
	}
	seq := h.seq()
	if code := post("wrong"); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d, want 401", code)
	}
	if n := len(h.agent.triggers); n != 0 {
		t.Fatalf("a bad signature queued %d syncs", n)
	}
	if code := post("s3cret"); code != http.StatusAccepted {
		t.Fatalf("good signature: %d, want 202", code)
	}
	if s := h.waitSync(seq); !strings.HasPrefix(s.LastSync.Reason, "webhook") {
		t.Fatalf("sync reason %q", s.LastSync.Reason)
	}
}

// TestStatusBeforeFirstSync: the status is valid JSON with empty lists
// before the loop ran.
func TestStatusBeforeFirstSync(t *testing.T) {
	h := newHarness(t)
	a, err := New(h.cfg, Deps{Source: h.src, Runtime: h.rt})
	if err != nil {
		t.Fatal(err)
	}
	_, body := get(t, a.Handler(), "GET", "/api/v1/status")
	if !strings.Contains(body, `"pods": []`) || !strings.Contains(body, `"applied": null`) {
		t.Fatalf("status before the first sync:\n%s", body)
	}
}
