package agent

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kelpie-dev/kelpie/internal/clock/clocktest"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
	"github.com/kelpie-dev/kelpie/source"
)

// fakeSource is an in-memory repository: a list of commits and a head.
type fakeSource struct {
	mu      sync.Mutex
	commits map[string]source.Fetched
	head    string
	err     error    // Fetch fails with it when set
	applied []string // the applied argument of every Fetch
	asked   []string // the hashes Commit was asked for
	order   map[string]int
	n       int
}

func newFakeSource() *fakeSource { return &fakeSource{commits: map[string]source.Fetched{}} }

// push makes a commit of files and moves the head to it.
func (s *fakeSource) push(subject string, files map[string]string) source.Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	sum := sha1.Sum(fmt.Appendf(nil, "%d %s", s.n, subject))
	h := hex.EncodeToString(sum[:])
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	c := source.Commit{Hash: h, Short: h[:12], Subject: subject, Author: "Test <t@example.com>", When: time.Unix(1700000000+int64(s.n), 0).UTC()}
	s.commits[h] = source.Fetched{Commit: c, FS: fsys, Source: "fake"}
	if s.order == nil {
		s.order = map[string]int{}
	}
	s.order[h] = s.n
	s.head = h
	return c
}

// Descends says whether ancestor was pushed before descendant (the fake's
// history is a line); a commit it does not hold is no ancestor.
func (s *fakeSource) Descends(ancestor, descendant string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, okA := s.order[ancestor]
	d, okD := s.order[descendant]
	return okA && okD && a <= d, nil
}

func (s *fakeSource) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *fakeSource) Fetch(ctx context.Context, applied string) (source.Fetched, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, applied)
	if s.err != nil {
		return source.Fetched{}, s.err
	}
	if s.head == "" {
		return source.Fetched{}, fmt.Errorf("fetch main: no such branch")
	}
	return s.commits[s.head], nil
}

func (s *fakeSource) Commit(hash string) (source.Fetched, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, hash)
	f, ok := s.commits[hash]
	if !ok {
		return source.Fetched{}, fmt.Errorf("commit %s: %w", hash, source.ErrUnknownRevision)
	}
	return f, nil
}

// harness runs one agent over fakes.
type harness struct {
	t      *testing.T
	src    *fakeSource
	rt     *reconcilertest.Fake
	clock  *clocktest.Clock
	events chan struct{}
	cfg    Config
	agent  *Agent
	cancel context.CancelFunc
	done   chan error
}

// newHarness prepares an agent over fresh fakes (not started).
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, src: newFakeSource(), rt: reconcilertest.NewFake(reconciler.Actual{}), clock: clocktest.New(), events: make(chan struct{}, 1)}
	h.cfg = DefaultConfig()
	h.cfg.Repos = []string{"file:///fake"}
	h.cfg.Ref = "main"
	h.cfg.StateDir = t.TempDir()
	h.cfg.Listen = "127.0.0.1:0"
	h.cfg.Host = reconciler.Host{Name: "test-host"}
	h.cfg.Clock = h.clock
	h.cfg.Log = testLogger(t)
	return h
}

// testLogger logs to the test's output with -v, else nowhere.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start creates and runs the agent; it is stopped when the test ends.
func (h *harness) start() {
	h.t.Helper()
	h.startOn(h.rt)
}

// startOn is start over rt, a runtime that wraps h.rt.
func (h *harness) startOn(rt reconciler.Runtime) {
	h.t.Helper()
	a, err := New(h.cfg, Deps{Source: h.src, Runtime: rt, Events: h.events})
	if err != nil {
		h.t.Fatal(err)
	}
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop stops the agent and waits for Run to return.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return after cancel")
	}
}

// waitFor polls the status until cond holds, for at most 10 s.
func (h *harness) waitFor(what string, cond func(Status) bool) Status {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := h.agent.Status()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; status: %+v", what, s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitSync waits for a sync numbered after seq to end and returns the status.
func (h *harness) waitSync(seq int) Status {
	h.t.Helper()
	return h.waitFor(fmt.Sprintf("sync %d", seq+1), func(s Status) bool { return s.LastSync != nil && s.LastSync.Seq > seq })
}

// seq is the number of the last sync that ended.
func (h *harness) seq() int {
	if s := h.agent.Status(); s.LastSync != nil {
		return s.LastSync.Seq
	}
	return 0
}

// mutations returns the runtime calls that change something, from index from.
func (h *harness) mutations(from int) []reconcilertest.Call {
	var out []reconcilertest.Call
	calls := h.rt.Calls()
	for _, c := range calls[min(from, len(calls)):] {
		if c.Method != "Observe" {
			out = append(out, c)
		}
	}
	return out
}

// podNames lists the fake's pods as namespace/name.
func (h *harness) podNames() []string {
	h.t.Helper()
	actual, err := h.rt.Observe(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, p := range actual.Pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	sort.Strings(out)
	return out
}

// deployment is a Deployment manifest in namespace agenttest of replicas
// running image.
func deployment(name string, replicas int, image string) string {
	return strategyDeployment(name, replicas, image, "")
}

// strategyDeployment is deployment with a strategy block (YAML under
// spec, indented by 2).
func strategyDeployment(name string, replicas int, image, strategy string) string {
	return testenv.Deployment{Name: name, Namespace: "agenttest", Replicas: replicas, Strategy: strategy, Container: testenv.Container{Image: image}}.YAML()
}

// noSurge is the strategy of a rolling update that replaces pods in place.
const noSurge = "  strategy:\n    rollingUpdate: {maxSurge: 0}\n"

// brokenManifest has an invalid field on line 7.
const brokenManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: agenttest
spec:
  replicas: two
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: main
        image: busybox
`
