package source

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const hookSecret = "It's a Secret to Everybody"

func hexMAC(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestWebhookHandler(t *testing.T) {
	const body = `{"ref":"refs/heads/main","after":"0123"}`
	good := hexMAC(hookSecret, body)
	bad := hexMAC("wrong secret", body)
	big := strings.Repeat("x", maxWebhookBody+1)

	type headers map[string]string
	tests := []struct {
		name    string
		method  string
		secret  string // hookSecret when ""
		body    string // body when ""
		headers headers
		status  int
		reason  string // the trigger sent; "" for none
	}{
		{"github push", "", "", "", headers{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + good}, 202, "webhook github push"},
		{"github bad signature", "", "", "", headers{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + bad}, 401, ""},
		{"github no prefix", "", "", "", headers{"X-GitHub-Event": "push", "X-Hub-Signature-256": good}, 401, ""},
		{"github not hex", "", "", "", headers{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=zz"}, 401, ""},
		{"github missing signature", "", "", "", headers{"X-GitHub-Event": "push"}, 401, ""},
		{"github ping", "", "", "", headers{"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + good}, 200, ""},
		{"github unsigned ping", "", "", "", headers{"X-GitHub-Event": "ping"}, 401, ""},
		{"github GET", "GET", "", "", headers{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + good}, 405, ""},
		{"github oversize", "", "", big, headers{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hexMAC(hookSecret, big)}, 413, ""},

		{"gitea push", "", "", "", headers{"X-Gitea-Event": "push", "X-Gitea-Signature": good, "X-Hub-Signature-256": "sha256=" + good}, 202, "webhook gitea push"},
		{"gitea bad signature", "", "", "", headers{"X-Gitea-Event": "push", "X-Gitea-Signature": bad}, 401, ""},
		{"gitea bad own signature, good hub one", "", "", "", headers{"X-Gitea-Event": "push", "X-Gitea-Signature": bad, "X-Hub-Signature-256": "sha256=" + good}, 401, ""},
		{"gitea missing signature", "", "", "", headers{"X-Gitea-Event": "push"}, 401, ""},
		{"gitea GET", "GET", "", "", headers{"X-Gitea-Event": "push", "X-Gitea-Signature": good}, 405, ""},
		{"gitea ping", "", "", "", headers{"X-Gitea-Event": "ping", "X-Gitea-Signature": good}, 200, ""},
		{"gitea oversize", "", "", big, headers{"X-Gitea-Event": "push", "X-Gitea-Signature": hexMAC(hookSecret, big)}, 413, ""},

		{"forgejo push", "", "", "", headers{"X-Forgejo-Event": "push", "X-Forgejo-Signature": good, "X-Gitea-Signature": good}, 202, "webhook forgejo push"},
		{"forgejo bad signature", "", "", "", headers{"X-Forgejo-Event": "push", "X-Forgejo-Signature": bad}, 401, ""},
		{"forgejo missing signature", "", "", "", headers{"X-Forgejo-Event": "push"}, 401, ""},
		{"forgejo PUT", "PUT", "", "", headers{"X-Forgejo-Event": "push", "X-Forgejo-Signature": good}, 405, ""},
		{"forgejo ping", "", "", "", headers{"X-Forgejo-Event": "ping", "X-Forgejo-Signature": good}, 200, ""},
		{"forgejo oversize", "", "", big, headers{"X-Forgejo-Event": "push", "X-Forgejo-Signature": hexMAC(hookSecret, big)}, 413, ""},

		{"gitlab push", "", "", "", headers{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret}, 202, "webhook gitlab push"},
		{"gitlab tag push", "", "", "", headers{"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": hookSecret}, 202, "webhook gitlab tag-push"},
		{"gitlab bad token", "", "", "", headers{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"}, 401, ""},
		{"gitlab token prefix", "", "", "", headers{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret[:5]}, 401, ""},
		{"gitlab missing token", "", "", "", headers{"X-Gitlab-Event": "Push Hook"}, 401, ""},
		{"gitlab GET", "GET", "", "", headers{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret}, 405, ""},
		{"gitlab ping", "", "", "", headers{"X-Gitlab-Event": "ping", "X-Gitlab-Token": hookSecret}, 200, ""},
		{"gitlab oversize", "", "", big, headers{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret}, 413, ""},

		{"empty secret refuses", "", "-", "", headers{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hexMAC("", body)}, 401, ""},
		{"empty secret refuses gitlab", "", "-", "", headers{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": ""}, 401, ""},
		{"odd event name", "", "", "", headers{"X-GitHub-Event": "Push\n<b>evil</b>", "X-Hub-Signature-256": "sha256=" + good}, 202, "webhook github pushbevilb"},
		{"no event header", "", "", "", headers{"X-Hub-Signature-256": "sha256=" + good}, 202, "webhook github event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := hookSecret
			if tt.secret == "-" {
				secret = ""
			}
			b := body
			if tt.body != "" {
				b = tt.body
			}
			method := http.MethodPost
			if tt.method != "" {
				method = tt.method
			}
			out := make(chan Trigger, 1)
			req := httptest.NewRequest(method, "/hooks/git", strings.NewReader(b))
			for k, v := range tt.headers {
				req.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
			rec := httptest.NewRecorder()
			WebhookHandler(secret, out).ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Errorf("status = %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tt.status)
			}
			if tt.status == 405 && rec.Header().Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", rec.Header().Get("Allow"))
			}
			select {
			case tr := <-out:
				if tr.Reason != tt.reason {
					t.Errorf("trigger %q, want %q", tr.Reason, tt.reason)
				}
			default:
				if tt.reason != "" {
					t.Errorf("no trigger, want %q", tt.reason)
				}
			}
		})
	}
}

// TestWebhookOversizeUnknownLength: a chunked body (no Content-Length) over
// the limit is cut off too.
func TestWebhookOversizeUnknownLength(t *testing.T) {
	out := make(chan Trigger, 1)
	big := strings.Repeat("x", 2*maxWebhookBody)
	req := httptest.NewRequest(http.MethodPost, "/hooks/git", strings.NewReader(big))
	req.ContentLength = -1
	req.Header.Set("X-Hub-Signature-256", "sha256="+hexMAC(hookSecret, big))
	rec := httptest.NewRecorder()
	WebhookHandler(hookSecret, out).ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || len(out) != 0 {
		t.Errorf("status %d, %d triggers; want 413 and none", rec.Code, len(out))
	}
}

// TestWebhookFullChannel: a trigger that finds the channel full is dropped,
// and the request does not wait.
func TestWebhookFullChannel(t *testing.T) {
	out := make(chan Trigger, 1)
	out <- Trigger{Reason: "poll"}
	h := WebhookHandler(hookSecret, out)
	for range 3 {
		req := httptest.NewRequest(http.MethodPost, "/hooks/git", strings.NewReader("{}"))
		req.Header.Set("X-Gitlab-Token", hookSecret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			t.Errorf("status %d, want 202", rec.Code)
		}
	}
	if tr := <-out; tr.Reason != "poll" {
		t.Errorf("channel holds %q, want the first trigger", tr.Reason)
	}
}
