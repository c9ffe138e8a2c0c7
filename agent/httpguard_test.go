package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHTTPGuard: the checks every request passes before its handler, on a
// loopback and on a LAN listen address.
func TestHTTPGuard(t *testing.T) {
	const token = "0123456789abcdef0123"
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	type req struct {
		name, listen, method, host, path, origin, auth string
		want                                           int
	}
	for _, c := range []req{
		{"loopback read", "127.0.0.1:7070", "GET", "127.0.0.1:7070", "/api/v1/status", "", "", http.StatusTeapot},
		{"localhost read", "127.0.0.1:7070", "GET", "localhost:7070", "/", "", "", http.StatusTeapot},
		{"ipv6 loopback read", "[::1]:7070", "GET", "[::1]:7070", "/api/v1/status", "", "", http.StatusTeapot},
		{"DNS rebinding", "127.0.0.1:7070", "GET", "evil.example:7070", "/api/v1/status", "", "", http.StatusMisdirectedRequest},
		{"DNS rebinding of metrics", "127.0.0.1:7070", "GET", "evil.example", "/metrics", "", "", http.StatusMisdirectedRequest},
		{"sync without token", "127.0.0.1:7070", "POST", "127.0.0.1:7070", "/api/v1/sync", "", "", http.StatusUnauthorized},
		{"sync with wrong token", "127.0.0.1:7070", "POST", "127.0.0.1:7070", "/api/v1/sync", "", "Bearer nope-nope-nope-nope", http.StatusUnauthorized},
		{"sync with token", "127.0.0.1:7070", "POST", "127.0.0.1:7070", "/api/v1/sync", "", "Bearer " + token, http.StatusTeapot},
		{"cross-site post with token", "127.0.0.1:7070", "POST", "127.0.0.1:7070", "/api/v1/sync", "https://evil.example", "Bearer " + token, http.StatusForbidden},
		{"opaque origin", "127.0.0.1:7070", "POST", "127.0.0.1:7070", "/api/v1/sync", "null", "Bearer " + token, http.StatusForbidden},
		{"same origin", "127.0.0.1:7070", "GET", "127.0.0.1:7070", "/", "http://127.0.0.1:7070", "", http.StatusTeapot},
		{"lan health", "0.0.0.0:7070", "GET", "10.1.2.3:7070", "/healthz", "", "", http.StatusTeapot},
		{"lan metrics", "10.1.2.3:7070", "GET", "10.1.2.3:7070", "/metrics", "", "", http.StatusTeapot},
		{"lan webhook", "10.1.2.3:7070", "POST", "hooks.example", "/hooks/git", "", "", http.StatusTeapot},
		{"lan mirror", "10.1.2.3:7070", "GET", "10.1.2.3:7070", "/mirror/v2/", "", "", http.StatusTeapot},
		{"lan status without token", "10.1.2.3:7070", "GET", "10.1.2.3:7070", "/api/v1/status", "", "", http.StatusUnauthorized},
		{"lan dashboard without token", "0.0.0.0:7070", "GET", "host.example", "/", "", "", http.StatusUnauthorized},
		{"lan status with token", "10.1.2.3:7070", "GET", "10.1.2.3:7070", "/api/v1/status", "", "Bearer " + token, http.StatusTeapot},
		{"lan dashboard with basic auth", "0.0.0.0:7070", "GET", "host.example", "/", "", "basic", http.StatusTeapot},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHTTPGuard(c.listen, token, false).wrap(ok)
			r := newLocalRequest(c.method, c.path, nil)
			r.Host = c.host
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			switch c.auth {
			case "":
			case "basic":
				r.SetBasicAuth("operator", token)
			default:
				r.Header.Set("Authorization", c.auth)
			}
			if code, body := do(h, r); code != c.want {
				t.Errorf("%s %s (Host %s, Origin %q): %d %s, want %d", c.method, c.path, c.host, c.origin, code, strings.TrimSpace(body), c.want)
			}
		})
	}
}

// TestHTTPGuardRateLimit: a burst of syncs is served, the rest get 429
// until the bucket refills; webhooks have their own bucket.
func TestHTTPGuardRateLimit(t *testing.T) {
	const token = "0123456789abcdef0123"
	h := newHTTPGuard("127.0.0.1:7070", token, false).wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	sync := func() int {
		r := newLocalRequest("POST", "/api/v1/sync", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		code, _ := do(h, r)
		return code
	}
	served, limited := 0, 0
	for range 50 {
		switch sync() {
		case http.StatusOK:
			served++
		case http.StatusTooManyRequests:
			limited++
		}
	}
	// 50 requests in far less than the 45 s the bucket needs to refill
	// them: at least the burst is served, and most are refused.
	if served < syncBurst || limited < 50-syncBurst-10 {
		t.Errorf("50 syncs at once: %d served, %d refused; want the burst of %d served and the rest refused", served, limited, syncBurst)
	}
	if code, _ := do(h, newLocalRequest("POST", "/hooks/git", nil)); code != http.StatusOK {
		t.Errorf("a webhook after the sync flood: %d, want 200 (its own bucket)", code)
	}
}

// TestAPITokenFile: the agent makes its token once, readable by root
// only, and keeps it across restarts.
func TestAPITokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent", "api-token")
	a, err := loadOrCreateAPIToken(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := loadOrCreateAPIToken(path)
	if err != nil || b != a || len(a) < minAPITokenLen {
		t.Errorf("second start: %q, %v; first %q", b, err, a)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateAPIToken(path); err == nil || !strings.Contains(err.Error(), "at least") {
		t.Errorf("a short token file: %v, want an error", err)
	}
}
