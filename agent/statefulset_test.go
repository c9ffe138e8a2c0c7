package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// probedStatefulSet is a StatefulSet in namespace agenttest whose
// container has an exec readiness probe ("ready") every second, and one
// volume claim template "data".
func probedStatefulSet(name string, replicas int, extra string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: %[1]s, namespace: agenttest}
spec:
  replicas: %[2]d
  serviceName: %[1]s
  selector: {matchLabels: {app: %[1]s}}
%[3]s  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
      - name: main
        image: registry.example/app:1
        readinessProbe:
          exec: {command: [ready]}
          periodSeconds: 1
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`, name, replicas, extra)
}

// TestStatefulSetOrderedStartAndReverseStop: an agent over the fake
// runtime starts a StatefulSet's pods one after another, each only once
// the one before is Ready, creates each ordinal's claim, and on a scale
// down removes the pods from the highest ordinal down, keeping the claims.
// Its status counts the set among the workloads.
func TestStatefulSetOrderedStartAndReverseStop(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	ready := map[string]bool{} // pods whose readiness probe passes
	p := &fakeProber{rt: h.rt, now: h.clock.Now}
	p.setAnswer(func(pod reconciler.ActualPod, cmd string) bool {
		mu.Lock()
		defer mu.Unlock()
		return ready[pod.Name]
	})
	setReady := func(name string) {
		mu.Lock()
		ready[name] = true
		mu.Unlock()
	}
	h.src.push("v1", map[string]string{"app.yaml": probedStatefulSet("db", 3, "")})
	h.startProbed(p)
	h.waitFor("db-0 created", func(s Status) bool { return len(s.Pods) >= 1 })

	created := func() []string {
		var out []string
		for _, c := range h.rt.Calls() {
			if c.Method == "CreatePod" {
				out = append(out, c.Subject)
			}
		}
		return out
	}
	// Not Ready: however long, db-1 is not created.
	for range 3 {
		h.clock.Advance(2 * time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	h.waitFor("db-1 waits for db-0", func(s Status) bool {
		return strings.Contains(strings.Join(s.Waiting, "\n"), "waits for db-0 to be Ready")
	})
	if got := h.podNames(); !slices.Equal(got, []string{"agenttest/db-0"}) {
		t.Fatalf("pods %v before db-0 is Ready, want db-0 alone", got)
	}
	for i, name := range []string{"db-0", "db-1", "db-2"} {
		setReady(name)
		want := min(i+2, 3)
		deadline := time.Now().Add(10 * time.Second)
		for len(h.podNames()) < want {
			if time.Now().After(deadline) {
				t.Fatalf("%s Ready: pods %v, want %d; waiting %v", name, h.podNames(), want, h.agent.Status().Waiting)
			}
			h.clock.Advance(time.Second)
			time.Sleep(5 * time.Millisecond)
		}
	}
	if got := created(); !slices.Equal(got, []string{"agenttest/db-0", "agenttest/db-1", "agenttest/db-2"}) {
		t.Errorf("created %v, want db-0, db-1, db-2 in order", got)
	}
	for _, c := range []string{"data-db-0", "data-db-1", "data-db-2"} {
		if !slices.ContainsFunc(h.rt.Calls(), func(call reconcilertest.Call) bool {
			return call.Method == "EnsureClaim" && call.Subject == "agenttest/"+c
		}) {
			t.Errorf("claim %s never made; calls %v", c, h.rt.Calls())
		}
	}

	// The status (and the dashboard, kelpie status) counts the set.
	wantWL := WorkloadStatus{Kind: "StatefulSet", Namespace: "agenttest", Name: "db", Desired: 3, Updated: 3, Ready: 3, Health: HealthHealthy}
	for i := 0; ; i++ {
		if got := h.agent.Status().Workloads; slices.Equal(got, []WorkloadStatus{wantWL}) {
			break
		} else if i == 40 {
			t.Fatalf("workloads %+v, want %+v", got, wantWL)
		}
		h.advance(stallCheckEvery) // the counts are computed at most every stallCheckEvery
	}

	// Scale down to 1: db-2 goes, then db-1; the claims stay.
	from := len(h.rt.Calls())
	seq := h.seq()
	h.src.push("v2", map[string]string{"app.yaml": probedStatefulSet("db", 1, "")})
	h.agent.Trigger("test")
	h.waitSync(seq)
	deadline := time.Now().Add(10 * time.Second)
	for len(h.podNames()) > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("scale down stuck: pods %v; waiting %v", h.podNames(), h.agent.Status().Waiting)
		}
		h.clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	var removed []string
	for _, c := range h.mutations(from) {
		switch c.Method {
		case "RemovePod":
			removed = append(removed, c.Subject)
		case "CreatePod":
			t.Errorf("scale down created %s", c.Subject)
		}
	}
	if !slices.Equal(removed, []string{"agenttest/db-2", "agenttest/db-1"}) {
		t.Errorf("removed %v, want db-2 then db-1", removed)
	}
	if got := h.podNames(); !slices.Equal(got, []string{"agenttest/db-0"}) {
		t.Errorf("pods %v after the scale down, want db-0", got)
	}
}

// TestClusterStatefulSetOrderedAcrossHosts: three clustered agents over
// real gossip run a StatefulSet of three spread one pod a host; each pod
// is created only once the pod of the ordinal below, on another host, is
// Ready there (as that host's gossiped status says). Every member's status
// counts the set across the hosts.
func TestClusterStatefulSetOrderedAcrossHosts(t *testing.T) {
	src := newFakeSource()
	// Without claims (which would pin each pod to its first host) and so
	// without the mount of one.
	db := probedStatefulSet("db", 3, "")
	db = strings.Replace(db, "        volumeMounts: [{name: data, mountPath: /data}]\n", "", 1)
	db = db[:strings.Index(db, "  volumeClaimTemplates:")]
	src.push("v1", map[string]string{"db.yaml": db})
	var mu sync.Mutex
	ready := map[string]bool{}
	tc := newTestCluster(t, src)
	var removed removalLog
	tc.runtime = func(f *reconcilertest.Fake) reconciler.Runtime { return removalRecorder{Fake: f, log: &removed} }
	tc.deps = func(name string, d *Deps) {
		p := &fakeProber{rt: d.Runtime.(removalRecorder).Fake, now: time.Now}
		p.setAnswer(func(pod reconciler.ActualPod, cmd string) bool {
			mu.Lock()
			defer mu.Unlock()
			return ready[pod.Name]
		})
		d.Prober = p
	}
	for _, name := range []string{"a", "b", "c"} {
		tc.start(name, 3, nil)
	}
	all := func() []string {
		var out []string
		for _, names := range tc.pods() {
			out = append(out, names...)
		}
		slices.Sort(out)
		return out
	}
	waitAll := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !slices.Equal(all(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("pods by host %v, want %v", tc.pods(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// holds checks for a while that no more than want run.
	holds := func(want ...string) {
		t.Helper()
		end := time.Now().Add(3 * time.Second) // over a remote poll and a drift check
		for time.Now().Before(end) {
			if got := all(); !slices.Equal(got, want) {
				t.Fatalf("pods %v (by host %v) before the ordinal below was Ready; want %v", got, tc.pods(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitAll("db-0")
	holds("db-0")
	for i, name := range []string{"db-0", "db-1"} {
		mu.Lock()
		ready[name] = true
		mu.Unlock()
		want := []string{"db-0", "db-1", "db-2"}[:i+2]
		waitAll(want...)
		if i == 0 {
			holds(want...)
		}
	}
	hosts := map[string]string{}
	for host, names := range tc.pods() {
		for _, n := range names {
			hosts[n] = host
		}
	}
	if hosts["db-0"] == hosts["db-1"] || hosts["db-1"] == hosts["db-2"] || hosts["db-0"] == hosts["db-2"] {
		t.Logf("pods by host %v: not one a host, the test shows less than it could", tc.pods())
	}

	// Scale down to 1: db-2 stops before db-1, though on another host.
	mu.Lock()
	ready["db-2"] = true
	mu.Unlock()
	time.Sleep(2 * time.Second) // db-2 Ready, and gossiped
	// Every member's status counts the set across the hosts.
	wantWL := []WorkloadStatus{{Kind: "StatefulSet", Namespace: "agenttest", Name: "db", Desired: 3, Updated: 3, Ready: 3, Health: HealthHealthy}}
	for _, m := range tc.members {
		deadline := time.Now().Add(3 * stallCheckEvery)
		for got := m.agent.Status().Workloads; !slices.Equal(got, wantWL); got = m.agent.Status().Workloads {
			if time.Now().After(deadline) {
				t.Fatalf("%s: workloads %+v, want %+v", m.name, got, wantWL)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	src.push("v2: scale to 1", map[string]string{"db.yaml": strings.Replace(db, "replicas: 3", "replicas: 1", 1)})
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := all()
		if slices.Equal(got, []string{"db-0"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scale down stuck: pods by host %v", tc.pods())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := removed.get(); !slices.Equal(got, []string{"agenttest/db-2", "agenttest/db-1"}) {
		t.Errorf("removed %v, want db-2 then db-1 (on their hosts, in that order)", got)
	}
}

// removalLog records, in order, the pods every member removes.
type removalLog struct {
	mu    sync.Mutex
	names []string
}

func (l *removalLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.names)
}

// removalRecorder is a member's fake runtime that logs its pod removals in
// a log the members share; a removal is logged once it has begun, and
// takes a little time, as a container's stop does.
type removalRecorder struct {
	*reconcilertest.Fake
	log *removalLog
}

func (r removalRecorder) RemovePod(ctx context.Context, namespace, name string, grace time.Duration) error {
	r.log.mu.Lock()
	r.log.names = append(r.log.names, namespace+"/"+name)
	r.log.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	return r.Fake.RemovePod(ctx, namespace, name, grace)
}
