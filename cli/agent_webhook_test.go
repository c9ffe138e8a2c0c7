package cli

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// hookSecret is the agent's --webhook-secret in TestAgentWebhook.
const hookSecret = "hook-s3cret"

// githubPush is a GitHub push event payload (the fields the agent could
// care about; it reads none of them).
func githubPush(t *testing.T, url, before, after string) []byte {
	return mustJSON(t, map[string]any{
		"ref": "refs/heads/main", "before": before, "after": after,
		"repository":  map[string]any{"full_name": "kelpie/site", "clone_url": url},
		"pusher":      map[string]any{"name": "test", "email": "test@kelpie.dev"},
		"head_commit": map[string]any{"id": after, "message": "push"},
	})
}

// gitlabPush is a GitLab push event payload.
func gitlabPush(t *testing.T, url, before, after string) []byte {
	return mustJSON(t, map[string]any{
		"object_kind": "push", "event_name": "push", "ref": "refs/heads/main",
		"before": before, "after": after, "checkout_sha": after,
		"project": map[string]any{"path_with_namespace": "kelpie/site", "git_http_url": url},
	})
}

// hubSignature is GitHub's X-Hub-Signature-256 of body under secret.
func hubSignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// TestAgentWebhook runs `kelpie agent --webhook-secret` as its own process
// following a bare repository served over git's smart HTTP on loopback, so
// that no ref watch sees pushes and the poll interval is an hour: only the
// webhook makes the agent fetch. Pushes are made with the git CLI.
//
// Requests without a valid proof of the secret (a GitHub signature made
// with another secret, none at all, one without its sha256= prefix, a wrong
// GitLab token) get 401 and trigger no sync: the agent runs none for a
// while after them (status and kelpie_sync_total say so) and the pushed
// commit stays unapplied; neither does a signed ping (200). A GitHub push
// event signed with the secret gets 202 and one sync that applies the new
// commit (the container is replaced with the new environment); so does a
// GitLab push event with the right X-Gitlab-Token.
func TestAgentWebhook(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	e, hc := newAgentHost(t, addr, "site")
	ns := fmt.Sprintf("hook%d", hc.Octet)
	url := serveGitHTTP(t, filepath.Dir(e.bare)) + "/" + filepath.Base(e.bare)
	prefix := hc.SubnetPrefix()

	v1 := e.push("v1", map[string]string{"app.yaml": envPod(ns, "app", "v1")})
	e.startRepo(url, "--interval", "1h", "--webhook-secret", hookSecret, "--log-format", "json")
	s := e.waitFor("v1 running", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && runningIn(s, prefix, "app")
	})
	if s.Repo[0] != url || s.LastSync.Reason != "start" {
		t.Fatalf("agent follows %v, first sync by %q; want %s by start", s.Repo, s.LastSync.Reason, url)
	}
	if got := hc.ContainerEnv(ns, "app", "main", "VERSION"); got != "v1" {
		t.Fatalf("v1: container has VERSION=%q", got)
	}
	seq := s.LastSync.Seq
	syncs := e.metricSum("kelpie_sync_total")
	if syncs != float64(seq) {
		t.Fatalf("kelpie_sync_total %v, status says %d syncs", syncs, seq)
	}
	before := e.pods()

	// v2 is pushed; nothing tells the agent but a webhook.
	v2 := e.push("v2", map[string]string{"app.yaml": envPod(ns, "app", "v2")})
	body := githubPush(t, url, v1, v2)
	lab := gitlabPush(t, url, v1, v2)
	for _, c := range []struct {
		name    string
		headers map[string]string
		body    []byte
		want    int
	}{
		{"github, signed with another secret", map[string]string{
			"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": hubSignature("not-the-secret", body)}, body, http.StatusUnauthorized},
		{"github, no signature", map[string]string{
			"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-2"}, body, http.StatusUnauthorized},
		{"github, signature of another body", map[string]string{
			"X-GitHub-Event": "push", "X-Hub-Signature-256": hubSignature(hookSecret, []byte(`{"ref":"refs/heads/other"}`))}, body, http.StatusUnauthorized},
		{"github, signature without its sha256= prefix", map[string]string{
			"X-GitHub-Event": "push", "X-Hub-Signature-256": strings.TrimPrefix(hubSignature(hookSecret, body), "sha256=")}, body, http.StatusUnauthorized},
		{"github, the legacy sha1 header only", map[string]string{
			"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=0123456789abcdef0123456789abcdef01234567"}, body, http.StatusUnauthorized},
		{"gitlab, wrong token", map[string]string{
			"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "not-the-secret"}, lab, http.StatusUnauthorized},
		{"gitlab, the secret's prefix as token", map[string]string{
			"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret[:4]}, lab, http.StatusUnauthorized},
		{"github ping, signed", map[string]string{
			"X-GitHub-Event": "ping", "X-Hub-Signature-256": hubSignature(hookSecret, []byte(`{"zen":"Keep it logically awesome."}`))},
			[]byte(`{"zen":"Keep it logically awesome."}`), http.StatusOK},
	} {
		if code, text := postWebhook(t, e.listen, c.headers, c.body); code != c.want {
			t.Fatalf("%s: %d %q, want %d", c.name, code, text, c.want)
		}
	}
	// A trigger is queued before the handler answers and the loop is idle:
	// had any request triggered a sync, it would have run by now.
	e.quiet(3*time.Second, seq, v1)
	if got := e.metricSum("kelpie_sync_total"); got != syncs {
		t.Fatalf("kelpie_sync_total went from %v to %v after refused webhooks", syncs, got)
	}
	if after := e.pods(); !samePods(before, after) {
		t.Fatalf("refused webhooks changed the host:\nbefore %+v\nafter  %+v", before, after)
	}

	// Signed with the secret: one sync, which applies v2.
	code, text := postWebhook(t, e.listen, map[string]string{
		"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-3", "X-Hub-Signature-256": hubSignature(hookSecret, body)}, body)
	if code != http.StatusAccepted {
		t.Fatalf("github push signed with the secret: %d %q, want 202", code, text)
	}
	s = e.waitFor("v2 applied by the github webhook", time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v2 && runningIn(s, prefix, "app")
	})
	if s.LastSync.Seq != seq+1 || s.LastSync.Reason != "webhook github push" || s.LastSync.Result != "ok" {
		t.Fatalf("v2: last sync %+v, want sync %d by \"webhook github push\", ok", s.LastSync, seq+1)
	}
	if got := hc.ContainerEnv(ns, "app", "main", "VERSION"); got != "v2" {
		t.Fatalf("v2: container has VERSION=%q", got)
	}
	if got := e.metricSum("kelpie_sync_total"); got != syncs+1 {
		t.Fatalf("kelpie_sync_total %v after the signed webhook, want %v", got, syncs+1)
	}

	// GitLab's token: v3.
	seq = s.LastSync.Seq
	v3 := e.push("v3", map[string]string{"app.yaml": envPod(ns, "app", "v3")})
	lab = gitlabPush(t, url, v2, v3)
	if code, text := postWebhook(t, e.listen, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"}, lab); code != http.StatusUnauthorized {
		t.Fatalf("gitlab push with a wrong token: %d %q, want 401", code, text)
	}
	e.quiet(2*time.Second, seq, v2)
	if code, text := postWebhook(t, e.listen, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret}, lab); code != http.StatusAccepted {
		t.Fatalf("gitlab push with the token: %d %q, want 202", code, text)
	}
	s = e.waitFor("v3 applied by the gitlab webhook", time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v3 && runningIn(s, prefix, "app")
	})
	if s.LastSync.Seq != seq+1 || s.LastSync.Reason != "webhook gitlab push" {
		t.Fatalf("v3: last sync %+v, want sync %d by \"webhook gitlab push\"", s.LastSync, seq+1)
	}
	if got := hc.ContainerEnv(ns, "app", "main", "VERSION"); got != "v3" {
		t.Fatalf("v3: container has VERSION=%q", got)
	}
	e.stop()
	if testing.Verbose() {
		t.Logf("agent log:\n%s", e.log)
	}
}
