package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// surgeStrategy is maxSurge 1, maxUnavailable 0: a rollout never has
// fewer than replicas available pods, nor more than replicas+1 pods.
const surgeStrategy = "  strategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n"

// podCounter watches the pods of a Deployment on the fakes of one or more
// hosts: after every pod created or removed it counts them all (a pod
// counts from the start of its creation, which takes delay) and those
// whose containers run, and keeps the highest and lowest counts.
type podCounter struct {
	owner string
	delay time.Duration

	mu       sync.Mutex
	fakes    []*reconcilertest.Fake
	on       bool
	inFlight int
	maxPods  int
	minReady int
}

// counted is a fake runtime whose pod changes podCounter counts.
type counted struct {
	*reconcilertest.Fake
	c *podCounter
}

func (r counted) CreatePod(ctx context.Context, p reconciler.Pod) error {
	r.c.mu.Lock()
	r.c.inFlight++
	r.c.sample()
	r.c.mu.Unlock()
	select { // a slow start, so that a pod the budget forbids would show
	case <-time.After(r.c.delay):
	case <-ctx.Done():
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	err := r.Fake.CreatePod(ctx, p)
	r.c.inFlight--
	r.c.sample()
	return err
}

func (r counted) RemovePod(ctx context.Context, namespace, name string, grace time.Duration) error {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	err := r.Fake.RemovePod(ctx, namespace, name, grace)
	r.c.sample()
	return err
}

// start begins counting from replicas Ready pods.
func (c *podCounter) start(replicas int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on, c.maxPods, c.minReady = true, replicas, replicas
}

// result returns the highest pod count and the lowest Ready count seen.
func (c *podCounter) result() (maxPods, minReady int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxPods, c.minReady
}

// sample counts the pods now; c.mu is held.
func (c *podCounter) sample() {
	if !c.on {
		return
	}
	pods, ready := c.inFlight, 0
	for _, f := range c.fakes {
		a, err := f.Observe(context.Background())
		if err != nil {
			continue
		}
		for _, p := range a.Pods {
			if p.Owner.Name != c.owner {
				continue
			}
			pods++
			running := p.SandboxReady && len(p.Containers) > 0
			for _, ct := range p.Containers {
				running = running && ct.State == reconciler.Running
			}
			if running {
				ready++
			}
		}
	}
	c.maxPods, c.minReady = max(c.maxPods, pods), min(c.minReady, ready)
}

// surged reports whether the fakes run exactly replicas pods of the
// Deployment, each with a surge name (a rollout from NAME-ORDINAL pods is
// over), and all running.
func (c *podCounter) surged(replicas int) bool {
	n := 0
	for _, f := range c.fakes {
		a, err := f.Observe(context.Background())
		if err != nil {
			return false
		}
		for _, p := range a.Pods {
			if p.Owner.Name != c.owner {
				continue
			}
			if _, ok := reconciler.SlotOf(p.Name); !ok {
				return false
			}
			n++
		}
	}
	return n == replicas
}

// TestRollingUpdateSurgeOneHost: on one host, a Deployment of 4 with
// maxSurge 1 and maxUnavailable 0 is rolled out one new pod beside one
// old pod at a time: never fewer than 4 running pods, never more than 5.
func TestRollingUpdateSurgeOneHost(t *testing.T) {
	h := newHarness(t)
	c := &podCounter{owner: "web", delay: 20 * time.Millisecond, fakes: []*reconcilertest.Fake{h.rt}}
	h.src.push("v1", map[string]string{"app.yaml": strategyDeployment("web", 4, "busybox:1", surgeStrategy)})
	h.startOn(counted{Fake: h.rt, c: c})
	h.waitFor("v1 running", func(s Status) bool { return len(s.Pods) == 4 })
	c.start(4)
	h.src.push("v2: new image", map[string]string{"app.yaml": strategyDeployment("web", 4, "busybox:2", surgeStrategy)})
	h.agent.Trigger("test")
	deadline := time.Now().Add(30 * time.Second)
	for !c.surged(4) {
		if time.Now().After(deadline) {
			t.Fatalf("the rollout did not end; waiting %v", h.agent.Status().Waiting)
		}
		h.clock.Advance(DefaultEventDelay + time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	maxPods, minReady := c.result()
	t.Logf("one host, 4 replicas, maxSurge 1, maxUnavailable 0: at most %d pods, at least %d running", maxPods, minReady)
	if maxPods != 5 || minReady < 4 {
		t.Errorf("at most %d pods (want 5: 4 and one surge), at least %d running (want 4)", maxPods, minReady)
	}
}

// TestClusterRolloutSurgeAcrossHosts: a Deployment of 6 replicas on 3
// hosts with maxSurge 1 and maxUnavailable 0 has at most 7 pods in the
// whole cluster during its rollout (the leader allows one surge at a
// time), and never fewer than 6 running. Paced by each host alone, three
// hosts would surge at once.
func TestClusterRolloutSurgeAcrossHosts(t *testing.T) {
	src := newFakeSource()
	src.push("v1", map[string]string{"web.yaml": strategyDeployment("web", 6, "busybox:1", surgeStrategy)})
	tc := newTestCluster(t, src)
	c := &podCounter{owner: "web", delay: 200 * time.Millisecond}
	tc.runtime = func(f *reconcilertest.Fake) reconciler.Runtime {
		c.mu.Lock()
		c.fakes = append(c.fakes, f)
		c.mu.Unlock()
		return counted{Fake: f, c: c}
	}
	for _, name := range []string{"a", "b", "c"} {
		tc.start(name, 0, nil)
	}
	tc.waitPodsSpread("6 replicas on 3 hosts", replicaNames("web", 6), 3)
	c.start(6)
	src.push("v2: new image", map[string]string{"web.yaml": strategyDeployment("web", 6, "busybox:2", surgeStrategy)})
	deadline := time.Now().Add(90 * time.Second)
	for {
		c.mu.Lock()
		done := c.surged(6)
		c.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout did not end: %v", tc.pods())
		}
		time.Sleep(20 * time.Millisecond)
	}
	maxPods, minReady := c.result()
	t.Logf("3 hosts, 6 replicas, maxSurge 1, maxUnavailable 0: at most %d pods, at least %d running", maxPods, minReady)
	if maxPods != 7 || minReady < 6 {
		t.Errorf("at most %d pods in the cluster (want 7: 6 and one surge), at least %d running (want 6)", maxPods, minReady)
	}
}
