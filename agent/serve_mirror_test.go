package agent

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/source"
)

func TestMirrorTokens(t *testing.T) {
	k1, k2 := make([]byte, 32), make([]byte, 32)
	k2[0] = 1
	ring := base64.StdEncoding.EncodeToString(k1) + "," + base64.StdEncoding.EncodeToString(k2)
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    []string
		wantErr string
	}{
		{"explicit", Config{MirrorToken: "0123456789abcdef"}, []string{"0123456789abcdef"}, ""},
		{"explicit wins over the key", Config{MirrorToken: "0123456789abcdef", Cluster: &gossip.Config{Key: ring}}, []string{"0123456789abcdef"}, ""},
		{"every key of the ring", Config{Cluster: &gossip.Config{Key: ring}}, []string{MirrorTokenFromKey(k1), MirrorTokenFromKey(k2)}, ""},
		{"no cluster", Config{}, nil, "needs MirrorToken (--mirror-token)"},
		{"insecure cluster", Config{Cluster: &gossip.Config{Insecure: true}}, nil, "needs MirrorToken"},
		{"bad key", Config{Cluster: &gossip.Config{Key: "!!"}}, nil, "derive the mirror token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mirrorTokens(&tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("tokens = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// The documented formula, fixed: hex(HMAC-SHA256(key, "kelpie-mirror")).
	if got := MirrorTokenFromKey(k1); len(got) != 64 || got == MirrorTokenFromKey(k2) {
		t.Errorf("MirrorTokenFromKey = %q", got)
	}
}

func TestConfigServeMirror(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Repos, c.StateDir, c.Host.Name = []string{"/srv/site.git"}, "/var/lib/kelpie", "h1"
		return c
	}
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"token", func(c *Config) { c.ServeMirror, c.MirrorToken = true, "0123456789abcdef" }, ""},
		{"gossip key", func(c *Config) { c.ServeMirror, c.Cluster = true, &gossip.Config{Key: "k"} }, ""},
		{"gossip key file", func(c *Config) { c.ServeMirror, c.Cluster = true, &gossip.Config{KeyFile: "/etc/k"} }, ""},
		{"nothing", func(c *Config) { c.ServeMirror = true }, "ServeMirror (--serve-mirror) needs MirrorToken (--mirror-token) or a cluster gossip key"},
		{"insecure gossip", func(c *Config) { c.ServeMirror, c.Cluster = true, &gossip.Config{Insecure: true} }, "needs MirrorToken"},
		{"short token", func(c *Config) { c.ServeMirror, c.MirrorToken = true, "short" }, "MirrorToken (--mirror-token) has 5 characters"},
		{"token alone", func(c *Config) { c.MirrorToken = "0123456789abcdef" }, "ServeMirror (--serve-mirror) is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestMirrorServesAppliedCommit serves a real agent cache (filled by
// source.Remote) through the mirror, and follows it with another
// source.Remote over HTTP with the token in the URL, as a peer agent does:
// the peer gets the commit the serving host applied, and nothing before
// the first; a wrong token, a push and git's dumb protocol are refused.
func TestMirrorServesAppliedCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	repo := testenv.NewGitRepo(t)
	work := repo.Dir
	commit := func(msg string) string {
		t.Helper()
		repo.Write("a.yaml", msg+"\n")
		return repo.Commit(msg)
	}
	c1, c2 := commit("one"), commit("two")

	cfg := DefaultConfig()
	cfg.Repos, cfg.StateDir, cfg.Host.Name = []string{work}, t.TempDir(), "h1"
	cfg.ServeMirror, cfg.MirrorToken = true, "peer-token-0123456789"
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	upstream, err := source.NewRemote(source.RemoteConfig{URLs: cfg.Repos, CacheDir: cfg.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close()
	if f, err := upstream.Fetch(ctx, ""); err != nil || f.Commit.Hash != c2 {
		t.Fatalf("fetch upstream = %v, %v", f.Commit.Hash, err)
	}

	var applied atomic.Value
	applied.Store("")
	registry := func(tokens ...string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("registry " + r.URL.Path)) })
	}
	m, err := newMirrorServer(&cfg, registry, func() string { return applied.Load().(string) })
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mirror/", m)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	repoURL := "http://kelpie:" + cfg.MirrorToken + "@" + host + MirrorRepoPath

	follow := func(url string) (string, error) {
		t.Helper()
		r, err := source.NewRemote(source.RemoteConfig{URLs: []string{url}, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		f, err := r.Fetch(ctx, "")
		return f.Commit.Hash, err
	}

	if h, err := follow(repoURL); err == nil {
		t.Errorf("before the first applied commit the peer fetched %s", h)
	}
	applied.Store(c1)
	if h, err := follow(repoURL); err != nil || h != c1 {
		t.Errorf("peer fetched %q, %v; want the applied %s (not the newer fetched head)", h, err, c1)
	}
	applied.Store(c2)
	if h, err := follow(repoURL); err != nil || h != c2 {
		t.Errorf("peer fetched %q, %v; want %s", h, err, c2)
	}
	bad := "http://kelpie:wrong-token-0123456789@" + host + MirrorRepoPath
	if _, err := follow(bad); err == nil || strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("fetch with a wrong token: %v; want an error without the token", err)
	} else {
		t.Logf("wrong token: %v", err)
	}

	// A push is refused, and the served ref stays.
	repo.Git("commit", "-q", "--allow-empty", "-m", "three")
	cmd := exec.Command("git", "-C", work, "push", repoURL, "HEAD:refs/heads/main")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+work, "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("push to the mirror succeeded:\n%s", out)
	}
	if h, err := follow(repoURL); err != nil || h != c2 {
		t.Errorf("after the push the peer fetched %q, %v; want %s", h, err, c2)
	}

	for _, tc := range []struct {
		method, path string
		auth         bool
		code         int
		body         string
	}{
		{"GET", "/mirror/v2/", false, 401, ""},
		{"GET", "/mirror/v2/", true, 200, "registry /v2/"},
		{"GET", MirrorRepoPath + "/HEAD", true, 403, ""},
		{"GET", MirrorRepoPath + "/info/refs?service=git-receive-pack", true, 403, ""},
		{"POST", MirrorRepoPath + "/git-receive-pack", true, 403, ""},
		{"GET", MirrorRepoPath + "/info/refs?service=git-upload-pack", false, 401, ""},
		// Go reads the first value, git http-backend the last: refused.
		{"GET", MirrorRepoPath + "/info/refs?service=git-upload-pack&service=git-receive-pack", true, 400, ""},
		{"GET", MirrorRepoPath + "/info/refs?service=git-upload-pack&x=1", true, 403, ""},
		{"POST", MirrorRepoPath + "/git-upload-pack?a=1&a=2", true, 400, ""},
		{"GET", "/mirror/elsewhere", true, 404, ""},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, srv.URL+tc.path, nil)
		if tc.auth {
			req.Header.Set("Authorization", "Bearer "+cfg.MirrorToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		_, _ = io.Copy(&sb, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || tc.body != "" && sb.String() != tc.body {
			t.Errorf("%s %s (auth %v) = %d %q, want %d %q", tc.method, tc.path, tc.auth, resp.StatusCode, sb.String(), tc.code, tc.body)
		}
	}
}
