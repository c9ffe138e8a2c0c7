package faults

import (
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// Modes of a faultyGit server.
const (
	gitOK       int32 = iota // serve the repository
	gitStall                 // accept connections and requests, never answer
	gitTruncate              // send the first half of every upload-pack answer, then end it
)

// faultyGit serves the bare repositories of a directory over git's smart
// HTTP protocol (git http-backend as a CGI) on a loopback port, and breaks
// on demand: in gitStall it accepts TCP connections and requests and
// never answers, in gitTruncate it cuts every pack in half.
type faultyGit struct {
	mode    atomic.Int32
	srv     *httptest.Server
	mu      sync.Mutex
	held    []net.Conn    // connections accepted while stalled
	release chan struct{} // closed when the test ends: stalled handlers return
}

// stallListener hands connections to the HTTP server except while the
// server stalls: then it keeps them, open and unanswered.
type stallListener struct {
	net.Listener
	g *faultyGit
}

func (l stallListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.g.mode.Load() != gitStall {
			return c, err
		}
		l.g.mu.Lock()
		l.g.held = append(l.g.held, c)
		l.g.mu.Unlock()
	}
}

// newFaultyGit serves the repositories under root until the test ends.
func newFaultyGit(t *testing.T, root string) *faultyGit {
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
	g := &faultyGit{release: make(chan struct{})}
	g.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch g.mode.Load() {
		case gitStall: // a kept-alive connection: the request is never answered
			select {
			case <-req.Context().Done():
			case <-g.release:
			}
			return
		case gitTruncate:
			if strings.HasSuffix(req.URL.Path, "/git-upload-pack") {
				rec := httptest.NewRecorder()
				backend.ServeHTTP(rec, req)
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				body := rec.Body.Bytes()
				_, _ = w.Write(body[:len(body)/2])
				return
			}
		}
		backend.ServeHTTP(w, req)
	}))
	g.srv.Listener = stallListener{Listener: g.srv.Listener, g: g}
	g.srv.Start()
	t.Cleanup(func() {
		close(g.release)
		g.srv.Close()
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, c := range g.held {
			c.Close()
		}
	})
	return g
}

// TestGitRemoteFaults: the agent follows a repository over HTTP. The
// server then stalls (accepts the connection, never answers): the fetch is
// given up on after --fetch-stall-timeout, status shows a fetch error that
// says the remote stalled, the last good commit keeps running untouched,
// and once the server answers again the pushed commit converges and the
// error clears. Then the server cuts the pack of the next commit in half:
// refused with an error that says so, nothing changes, nothing of the
// pack stays in the cache; then it converges.
func TestGitRemoteFaults(t *testing.T) {
	parallel(t)
	addr := testenv.ContainerdAddress(t)
	r := newRig(t, addr)
	g := newFaultyGit(t, filepath.Dir(r.bare))
	url := g.srv.URL + "/" + filepath.Base(r.bare)

	v1 := site{"web": "1", "worker": "1"}
	c1 := r.push("v1", r.files(v1))
	r.start(url, "--interval", "1s", "--fetch-stall-timeout", "2s")
	r.waitConverged("v1 running", 2*time.Minute, c1, v1)
	pids := r.taskPIDs()

	// The remote stalls.
	g.mode.Store(gitStall)
	v2 := site{"web": "2", "worker": "1", "extra": "1"}
	c2 := r.push("v2", r.files(v2))
	began := time.Now()
	s := r.waitFor("a fetch error naming the stall", time.Minute, func(s agent.Status) bool {
		return s.LastError != nil && s.LastError.Kind == agent.KindFetch && strings.Contains(s.LastError.Message, "remote stalled")
	})
	t.Logf("stalled remote: after %v status says %s: %s", time.Since(began).Round(time.Millisecond), s.LastError.Kind, s.LastError.Message)
	if s.Applied == nil || s.Applied.Hash != c1 || !strings.Contains(s.LastError.Message, url) {
		t.Errorf("during the stall: applied %v, error %q; want %.12s applied and the URL named", s.Applied, s.LastError.Message, c1)
	}
	// The agent is not stuck: another fetch is tried and fails the same way.
	seq := s.LastSync.Seq
	r.waitFor("the stalled fetch retried", time.Minute, func(s agent.Status) bool {
		return s.LastSync != nil && s.LastSync.Seq > seq && s.LastError != nil && strings.Contains(s.LastError.Message, "remote stalled")
	})
	r.check("during the stall", v1)
	if after := r.taskPIDs(); !sameMap(pids, after) {
		t.Errorf("the stall changed the host's tasks: before %v, after %v", pids, after)
	}

	// The remote answers again: the pushed commit converges, the error clears.
	g.mode.Store(gitOK)
	r.waitConverged("v2 after the stall", time.Minute, c2, v2)

	// The remote cuts the pack in half.
	g.mode.Store(gitTruncate)
	v3 := site{"web": "3", "worker": "1"}
	files := r.files(v3)
	for i := range 50 { // a pack of some size: a tree and many blobs, beside apps/
		files[filepath.Join("..", "data", strings.Repeat("d", i%5+1)+string(rune('a'+i%26))+".txt")] = strings.Repeat(string(rune('a'+i%26))+"0123456789", 100+i)
	}
	c3 := r.push("v3", files)
	s = r.waitFor("a fetch error naming the truncated pack", time.Minute, func(s agent.Status) bool {
		return s.LastError != nil && s.LastError.Kind == agent.KindFetch && strings.Contains(s.LastError.Message, "pack ended early")
	})
	t.Logf("truncated pack: status says %s: %s", s.LastError.Kind, s.LastError.Message)
	if s.Applied == nil || s.Applied.Hash != c2 {
		t.Errorf("after the truncated pack: applied %v, want %.12s", s.Applied, c2)
	}
	r.check("after the truncated pack", v2)
	if tmp, _ := filepath.Glob(filepath.Join(r.hc.StateDir, "agent", "git", "objects", "pack", "tmp_pack_*")); len(tmp) > 0 {
		t.Errorf("partial packs left in the git cache: %v", tmp)
	}
	g.mode.Store(gitOK)
	r.waitConverged("v3 after the truncated pack", time.Minute, c3, v3)
	r.stop()
}

// sameMap reports whether two maps hold the same keys and values.
func sameMap[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
