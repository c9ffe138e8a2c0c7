package agent

import (
	"context"
	"sync"
	"testing"
	"time"

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
