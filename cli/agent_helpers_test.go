package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
)

// newAgentHost prepares an agentE2E on a private host of its own (a pod
// subnet claimed from the shared range, its own bridge and containerd
// namespace; see nethost.New) with an empty bare repository. The agent
// it starts is killed, if still running, before the host is emptied and
// checked when the test ends.
func newAgentHost(t *testing.T, addr, tag string) (*agentE2E, *nethost.Host) {
	t.Helper()
	h, hc := newPrivateHost(t, addr, tag)
	e := &agentE2E{t: t, bin: nethost.BuildKelpie(t), listen: freeAddr(t), repo: testenv.NewGitRepo(t),
		bare: testenv.NewBareRepo(t)}
	// newPrivateHost's cleanup empties the host as node "test-host".
	e.flags = append(slices.Clone(h.flags), "--node-name", "test-host")
	t.Cleanup(func() {
		if e.cmd != nil {
			e.cmd.Process.Kill()
			<-e.done
		}
	})
	return e, hc
}

// startRepo runs the agent process following repo (a URL or a path), with
// the host's flags and extra ones; unlike start it adds no --interval or
// --webhook-secret of its own.
func (e *agentE2E) startRepo(repo string, extra ...string) {
	e.t.Helper()
	args := append([]string{"agent", "--repo", repo, "--ref", "main", "--path", "apps", "--listen", e.listen}, e.flags...)
	e.cmd = exec.Command(e.bin, append(args, extra...)...)
	if e.log == nil {
		e.log = &bytes.Buffer{}
	}
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.done = make(chan error, 1)
	go func() { e.done <- e.cmd.Wait() }()
}

// quiet checks, for the whole of window, that the agent runs no sync after
// the one numbered seq and still applies commit: what must not happen has
// had the time to (the loop is idle and starts a requested sync at once).
func (e *agentE2E) quiet(window time.Duration, seq int, commit string) {
	e.t.Helper()
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		s, ok := e.status()
		if ok {
			if s.LastSync == nil || s.LastSync.Seq != seq {
				e.t.Fatalf("a sync ran that nothing should have triggered: %+v\nagent log:\n%s", s.LastSync, e.log)
			}
			if s.Applied == nil || s.Applied.Hash != commit {
				e.t.Fatalf("the applied commit changed to %+v, want %.12s", s.Applied, commit)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metricSum adds up every series of the metric name on the agent's /metrics.
func (e *agentE2E) metricSum(name string) float64 {
	e.t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + e.listen + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (!strings.HasPrefix(rest, "{") && !strings.HasPrefix(rest, " ")) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			e.t.Fatalf("metrics: %q: %v", line, err)
		}
		sum, found = sum+v, true
	}
	if err := sc.Err(); err != nil {
		e.t.Fatal(err)
	}
	if !found {
		e.t.Fatalf("metrics: no series of %s", name)
	}
	return sum
}

// runningIn reports whether the status lists exactly the pods names, each
// Running with an address of the host's pod subnet (prefix "10.248.N.").
func runningIn(s agent.Status, prefix string, names ...string) bool {
	var got []string
	for _, p := range s.Pods {
		if p.State != "Running" || !strings.HasPrefix(p.IP, prefix) {
			return false
		}
		got = append(got, p.Name)
	}
	slices.Sort(got)
	names = slices.Clone(names)
	slices.Sort(names)
	return slices.Equal(got, names)
}

// envPod is a one-container busybox Pod whose VERSION variable is version:
// changing it replaces the pod.
func envPod(namespace, name, version string) string {
	return testenv.Pod{Name: name, Namespace: namespace, Container: testenv.Container{Command: `"sleep", "3600"`, Version: version, Grace: new(0)}}.YAML()
}

// serveGitHTTP serves the bare repositories under root over git's smart
// HTTP protocol (git http-backend as a CGI) on a loopback port until the
// test ends, and returns the base URL: a repository the agent reaches this
// way is not on its host as far as it can tell, so no ref watch sees pushes
// into it.
func serveGitHTTP(t *testing.T, root string) string {
	t.Helper()
	git := testenv.Binary(t, "git", "git")
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")); err != nil {
		testenv.Missing(t, "git http-backend not found (apt-get install git): %v", err)
	}
	var stderr lockedBuffer
	srv := httptest.NewServer(&cgi.Handler{
		Path:   git,
		Args:   []string{"http-backend"},
		Env:    []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root},
		Stderr: &stderr,
	})
	t.Cleanup(func() {
		srv.Close()
		if s := stderr.String(); s != "" {
			t.Logf("git http-backend stderr:\n%s", s)
		}
	})
	return srv.URL
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// postWebhook posts body to the agent's /hooks/git with the headers and
// returns the status code and the response body.
func postWebhook(t *testing.T, listen string, headers map[string]string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+listen+"/hooks/git", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

// mustJSON marshals v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
