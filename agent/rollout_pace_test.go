package agent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// gate is a fake runtime whose CreatePod waits, once closed, until the
// test lets it through: a pod being replaced stays down as long as the
// test wants, and the test counts how many are down at once.
type gate struct {
	*reconcilertest.Fake
	g *gateState
}

// gateState is shared by the gates of all members.
type gateState struct {
	mu       sync.Mutex
	closed   bool
	inFlight int
	maxSeen  int
	release  chan struct{}
}

func (g gate) CreatePod(ctx context.Context, p reconciler.Pod) error {
	s := g.g
	s.mu.Lock()
	closed := s.closed
	if closed {
		s.inFlight++
		s.maxSeen = max(s.maxSeen, s.inFlight)
	}
	s.mu.Unlock()
	if closed {
		select {
		case <-s.release:
		case <-ctx.Done():
		}
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}
	return g.Fake.CreatePod(ctx, p)
}

// TestClusterRolloutPacedAcrossHosts: a Deployment of 6 replicas on 3
// hosts with maxUnavailable 1 (25% of 6) and maxSurge 0 is rolled out one replica at a
// time in the whole cluster: the leader allows the next replacement only
// once the previous one runs the new template and is ready. Paced by each
// host alone, three would be down at once.
func TestClusterRolloutPacedAcrossHosts(t *testing.T) {
	src := newFakeSource()
	src.push("v1", map[string]string{"web.yaml": strategyDeployment("web", 6, "busybox:1", noSurge)})
	tc := newTestCluster(t, src)
	st := &gateState{release: make(chan struct{})}
	tc.runtime = func(f *reconcilertest.Fake) reconciler.Runtime { return gate{Fake: f, g: st} }
	for _, name := range []string{"a", "b", "c"} {
		tc.start(name, 0, nil)
	}
	tc.waitPodsSpread("6 replicas on 3 hosts", replicaNames("web", 6), 3)
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	src.push("v2: new image", map[string]string{"web.yaml": strategyDeployment("web", 6, "busybox:2", noSurge)})

	deadline := time.Now().Add(90 * time.Second)
	released := 0
	for released < 6 {
		st.mu.Lock()
		n := st.inFlight
		st.mu.Unlock()
		if n == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the rollout stopped after %d replacements", released)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// Give the other hosts a chance to start a replacement too, were
		// they allowed to, before letting this one through.
		time.Sleep(300 * time.Millisecond)
		st.release <- struct{}{}
		released++
	}
	st.mu.Lock()
	maxSeen := st.maxSeen
	st.closed = false
	st.mu.Unlock()
	if maxSeen != 1 {
		t.Errorf("%d replicas were being replaced at once; maxUnavailable is 1 for the whole cluster", maxSeen)
	}
}

// TestClusterRolloutOffTheLeader: a Deployment whose nodeSelector leaves
// the leader out still rolls: the leader paces it from the manifests, not
// from what it would run itself (its hosts waited for it forever).
func TestClusterRolloutOffTheLeader(t *testing.T) {
	src := newFakeSource()
	src.push("v0", map[string]string{"other.yaml": strategyDeployment("other", 1, "busybox:1", noSurge)})
	tc := newTestCluster(t, src)
	for _, name := range []string{"a", "b", "c"} {
		tc.start(name, 0, nil)
	}
	lead := tc.leader()
	var host *clusterMember
	for _, m := range tc.members {
		if m != lead {
			host = m
			break
		}
	}
	web := func(image string) string {
		return testenv.Deployment{Name: "web", Namespace: "agenttest", Replicas: 2, Strategy: noSurge,
			Container: testenv.Container{Image: image, NodeSelector: map[string]string{"kubernetes.io/hostname": host.name}}}.YAML()
	}
	hashes := func() map[string]string {
		actual, err := host.rt.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range actual.Pods {
			if strings.HasPrefix(p.Name, "web-") {
				out[p.Name] = p.Hash
			}
		}
		return out
	}
	src.push("v1: web on "+host.name, map[string]string{"other.yaml": strategyDeployment("other", 1, "busybox:1", noSurge), "web.yaml": web("busybox:1")})
	var v1 string
	testenv.Eventually(t, 90*time.Second, "web's 2 replicas on "+host.name, func() bool {
		h := hashes()
		v1 = h["web-0"]
		return len(h) == 2 && v1 != "" && h["web-1"] == v1
	})
	src.push("v2: new image", map[string]string{"other.yaml": strategyDeployment("other", 1, "busybox:1", noSurge), "web.yaml": web("busybox:2")})
	testenv.Eventually(t, 90*time.Second, "web rolled out on "+host.name+" (not the leader, "+lead.name+")", func() bool {
		h := hashes()
		return len(h) == 2 && h["web-0"] != v1 && h["web-0"] != "" && h["web-1"] == h["web-0"]
	})
}
