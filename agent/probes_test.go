package agent

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// fakeProber answers probes with answer(pod, probe command) and kills
// containers in the fake runtime (they exit 137).
type fakeProber struct {
	rt  *reconcilertest.Fake
	now func() time.Time // the agent's clock

	mu     sync.Mutex
	answer func(pod reconciler.ActualPod, command string) bool
	kills  []string
}

func (f *fakeProber) Probe(ctx context.Context, pod reconciler.ActualPod, container string, p reconciler.Probe) (bool, string) {
	f.mu.Lock()
	answer := f.answer
	f.mu.Unlock()
	if answer(pod, p.Exec[0]) {
		return true, ""
	}
	return false, "exit 1"
}

func (f *fakeProber) KillContainer(ctx context.Context, namespace, pod, container string, grace time.Duration) error {
	f.mu.Lock()
	f.kills = append(f.kills, namespace+"/"+pod+"/"+container+" "+grace.String())
	f.mu.Unlock()
	actual, err := f.rt.Observe(ctx)
	if err != nil {
		return err
	}
	for _, p := range actual.Pods {
		for _, c := range p.Containers {
			if p.Namespace == namespace && p.Name == pod && c.Name == container && c.State == reconciler.Running {
				c.State, c.ExitCode, c.FinishedAt = reconciler.Exited, 137, f.now()
				return f.rt.SetContainer(namespace, pod, c)
			}
		}
	}
	return nil
}

func (f *fakeProber) setAnswer(a func(pod reconciler.ActualPod, command string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = a
}

func (f *fakeProber) killed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.kills...)
}

// probedDeployment is a Deployment whose container has an exec readiness
// probe ("ready") and liveness probe ("live", failing once kills), both
// every second.
func probedDeployment(name string, replicas int, version string) string {
	return testenv.Deployment{Name: name, Namespace: "agenttest", Replicas: replicas, Container: testenv.Container{Version: version,
		Extra: "          readinessProbe:\n            exec: {command: [ready]}\n            periodSeconds: 1\n" +
			"          livenessProbe:\n            exec: {command: [live]}\n            periodSeconds: 1\n            failureThreshold: 1\n            terminationGracePeriodSeconds: 4\n"}}.YAML()
}

// startProbed starts the harness's agent with prober p.
func (h *harness) startProbed(p Prober) {
	h.t.Helper()
	a, err := New(h.cfg, Deps{Source: h.src, Runtime: h.rt, Events: h.events, Prober: p})
	if err != nil {
		h.t.Fatal(err)
	}
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// TestProbeReadinessStatus: a pod is not Ready until its readiness probe
// passes; status, the READY column and kelpie_pods_ready say so, and
// kelpie_probes_total counts the probes.
func TestProbeReadinessStatus(t *testing.T) {
	h := newHarness(t)
	p := &fakeProber{rt: h.rt, now: h.clock.Now, answer: func(reconciler.ActualPod, string) bool { return false }}
	p.setAnswer(func(_ reconciler.ActualPod, cmd string) bool { return cmd == "live" })
	h.src.push("v1", map[string]string{"app.yaml": probedDeployment("web", 1, "1")})
	h.startProbed(p)
	s := h.waitFor("pod running, not ready", func(s Status) bool {
		return len(s.Pods) == 1 && s.Pods[0].State == "Running"
	})
	if ps := s.Pods[0]; ps.PodReady || ps.Ready != "0/1" || ps.Containers[0].Ready {
		t.Fatalf("Ready before the readiness probe passed: %+v", ps)
	}
	p.setAnswer(func(reconciler.ActualPod, string) bool { return true })
	h.clock.Advance(time.Second)
	s = h.waitFor("pod ready", func(s Status) bool { return len(s.Pods) == 1 && s.Pods[0].PodReady })
	if ps := s.Pods[0]; ps.Ready != "1/1" || !ps.Containers[0].Ready || ps.ReadySince.IsZero() {
		t.Errorf("ready pod: %+v", ps)
	}
	m := h.metrics()
	if !strings.Contains(m, "kelpie_pods_ready 1") {
		t.Errorf("metrics lack kelpie_pods_ready 1:\n%s", m)
	}
	// The readiness probe failed, then passed: both are counted.
	for _, result := range []string{"failure", "success"} {
		series := `kelpie_probes_total{probe="readiness",result="` + result + `"} `
		if i := strings.Index(m, series); i < 0 || strings.HasPrefix(m[i+len(series):], "0\n") {
			t.Errorf("metrics lack a readiness probe's %s:\n%s", result, m)
		}
	}
}

// metrics returns the agent's /metrics text.
func (h *harness) metrics() string {
	h.t.Helper()
	rec := &responseRecorder{header: http.Header{}}
	req, _ := http.NewRequest("GET", "http://127.0.0.1/metrics", nil)
	req.RemoteAddr = "127.0.0.1:1"
	h.agent.Handler().ServeHTTP(rec, req)
	return rec.body.String()
}

// responseRecorder is a minimal http.ResponseWriter.
type responseRecorder struct {
	header http.Header
	body   strings.Builder
	code   int
}

func (r *responseRecorder) Header() http.Header         { return r.header }
func (r *responseRecorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *responseRecorder) WriteHeader(code int)        { r.code = code }

var _ io.Writer = (*responseRecorder)(nil)

// TestProbeLivenessRestart: a liveness probe that fails kills the
// container once, with the probe's grace, and the agent restarts it at
// once (the first restart of a streak).
func TestProbeLivenessRestart(t *testing.T) {
	h := newHarness(t)
	p := &fakeProber{rt: h.rt, now: h.clock.Now, answer: func(reconciler.ActualPod, string) bool { return true }}
	h.src.push("v1", map[string]string{"app.yaml": probedDeployment("web", 1, "1")})
	h.startProbed(p)
	h.waitFor("pod ready", func(s Status) bool { return len(s.Pods) == 1 && s.Pods[0].PodReady })
	var once sync.Once // one liveness failure, then all pass
	p.setAnswer(func(_ reconciler.ActualPod, cmd string) bool {
		failed := false
		if cmd == "live" {
			once.Do(func() { failed = true })
		}
		return !failed
	})
	h.clock.Advance(time.Second)
	h.waitFor("container restarted", func(s Status) bool {
		return len(s.Pods) == 1 && s.Pods[0].Restarts == 1 && s.Pods[0].State == "Running"
	})
	if got := p.killed(); len(got) != 1 || got[0] != "agenttest/web-0/main 4s" {
		t.Errorf("kills %v, want one with the probe's grace 4s", got)
	}
	h.clock.Advance(time.Second)
	h.waitFor("ready again", func(s Status) bool { return len(s.Pods) == 1 && s.Pods[0].PodReady })
	if got := p.killed(); len(got) != 1 {
		t.Errorf("kills %v, want one", got)
	}
}

// TestProbeReadinessGatesRollout: a rolling update replaces the next pod
// only once the new one is Ready; a new version that never becomes Ready
// keeps the old pods serving.
func TestProbeReadinessGatesRollout(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	readyHash := map[string]bool{} // spec hashes whose pods pass readiness
	p := &fakeProber{rt: h.rt, now: h.clock.Now}
	p.setAnswer(func(pod reconciler.ActualPod, cmd string) bool {
		mu.Lock()
		defer mu.Unlock()
		return cmd == "live" || readyHash[pod.Hash]
	})
	h.src.push("v1", map[string]string{"app.yaml": probedDeployment("web", 3, "1")})
	h.startProbed(p)
	h.waitFor("v1 running", func(s Status) bool { return len(s.Pods) == 3 })
	old := h.hashes()
	mu.Lock()
	readyHash[old["web-0"]] = true
	mu.Unlock()
	h.clock.Advance(time.Second)
	h.waitFor("v1 ready", func(s Status) bool {
		n := 0
		for _, p := range s.Pods {
			if p.PodReady {
				n++
			}
		}
		return n == 3
	})

	seq := h.seq()
	h.src.push("v2", map[string]string{"app.yaml": probedDeployment("web", 3, "2")})
	h.agent.Trigger("test")
	h.waitSync(seq)
	changed := func() int {
		n := 0
		for name, hash := range h.hashes() {
			if hash != old[name] {
				n++
			}
		}
		return n
	}
	if n := changed(); n != 1 {
		t.Fatalf("after the sync %d pods run v2, want 1", n)
	}
	// v2 never Ready: however long, nothing more is replaced.
	for range 5 {
		h.clock.Advance(10 * time.Second)
	}
	h.waitFor("the rollout waits", func(s Status) bool {
		return len(s.Waiting) > 0 && strings.Contains(strings.Join(s.Waiting, "\n"), "waiting for agenttest/web-0")
	})
	if n := changed(); n != 1 {
		t.Fatalf("a not-Ready v2 pod let the rollout go on: %d pods run v2", n)
	}
	// v2 Ready: the rollout goes on, one pod at a time, to the end.
	mu.Lock()
	for _, hash := range h.hashes() {
		if hash != old["web-0"] {
			readyHash[hash] = true
		}
	}
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for changed() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("rollout stuck at %d of 3; waiting %v", changed(), h.agent.Status().Waiting)
		}
		h.clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
}
