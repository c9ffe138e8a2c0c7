package source

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// stallServer accepts TCP connections on loopback and never answers, until
// the test ends; it returns its address.
func stallServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestFetchStalledRemote: a server that accepts and never answers is given
// up on after StallTimeout with an error saying so, and the next URL is
// tried.
func TestFetchStalledRemote(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	stalled := "http://" + stallServer(t) + "/site.git"

	r := newTestRemote(t, RemoteConfig{URLs: []string{stalled}, StallTimeout: 300 * time.Millisecond})
	start := time.Now()
	done := make(chan error, 1)
	go func() { _, err := r.Fetch(context.Background(), ""); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStalled) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), stalled) ||
			!strings.Contains(err.Error(), "nothing received for 300ms") {
			t.Fatalf("Fetch from a stalled remote = %v, want ErrStalled naming the URL and the timeout", err)
		}
		t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("Fetch from a stalled remote still waits after 30s")
	}

	// With a good mirror behind it, the mirror's head is taken.
	r = newTestRemote(t, RemoteConfig{URLs: []string{stalled, u.bare}, StallTimeout: 300 * time.Millisecond})
	f := mustFetch(t, r, "", c1)
	if len(f.Skipped) != 1 || !errors.Is(f.Skipped[0], ErrStalled) {
		t.Errorf("Skipped = %v, want the stalled URL", f.Skipped)
	}
}

// TestFetchTruncatedPack: a server whose pack is cut in half is refused
// with an error naming the URL; nothing of it stays in the cache and the
// applied commit is still there.
func TestFetchTruncatedPack(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	srv := truncatingGitServer(t, filepath.Dir(u.bare))
	url := srv.URL + "/" + filepath.Base(u.bare)
	r := newTestRemote(t, RemoteConfig{URLs: []string{url}})
	mustFetch(t, r, "", c1)

	u.Write("big.yaml", strings.Repeat("filler that does not compress away: 0123456789abcdef\n", 1))
	for i := range 200 {
		u.Write("f/"+strings.Repeat("x", i%7+1)+string(rune('a'+i%26))+".yaml", strings.Repeat(string(rune('a'+i%26)), 1000+i))
	}
	u.Commit("many files")
	u.push()
	srv.truncate.Store(true)
	_, err := r.Fetch(context.Background(), c1)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "pack ended early") {
		t.Fatalf("Fetch of a truncated pack = %v, want an error naming %s", err, url)
	}
	t.Logf("truncated pack: %v", err)
	if tmp, _ := filepath.Glob(filepath.Join(r.cfg.CacheDir, "objects", "pack", "tmp_pack_*")); len(tmp) > 0 {
		t.Errorf("partial packs left in the cache: %v", tmp)
	}
	if _, err := r.Commit(c1); err != nil {
		t.Errorf("the applied commit after a truncated fetch: %v", err)
	}
}

// gitServer serves bare repositories over git's smart HTTP protocol (git
// http-backend as a CGI); with truncate set it sends only the first half of
// every upload-pack answer (the one that carries the pack) and then ends
// the response.
type gitServer struct {
	*httptest.Server
	truncate atomic.Bool
}

// truncatingGitServer serves the repositories under root until the test ends.
func truncatingGitServer(t *testing.T, root string) *gitServer {
	t.Helper()
	git := testenv.Binary(t, "git", "git")
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")); err != nil {
		testenv.Missing(t, "git http-backend not found (apt-get install git): %v", err)
	}
	backend := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root},
	}
	s := &gitServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !s.truncate.Load() || !strings.HasSuffix(req.URL.Path, "/git-upload-pack") {
			backend.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		backend.ServeHTTP(rec, req)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		body := rec.Body.Bytes()
		w.Write(body[:len(body)/2])
	}))
	t.Cleanup(s.Close)
	return s
}
