package agent

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// subnetFake is a fake runtime that numbers pods in a subnet it is told,
// as host.Containerd does: the agent must give it a slice before it starts
// pods. It reports no pod addresses (the fake's own are not in the slice;
// the planner's renumbering has its own tests).
type subnetFake struct {
	*reconcilertest.Fake
	mu  sync.Mutex
	sub netip.Prefix
	set []netip.Prefix
}

func (f *subnetFake) PodSubnet() netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sub
}

func (f *subnetFake) SetPodSubnet(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sub, f.set = p, append(f.set, p)
	return nil
}

func (f *subnetFake) CreatePod(ctx context.Context, p reconciler.Pod) error {
	if !f.PodSubnet().IsValid() {
		panic("pod " + p.Name + " created before the host had a pod range")
	}
	return f.Fake.CreatePod(ctx, p)
}

func (f *subnetFake) Observe(ctx context.Context) (reconciler.Actual, error) {
	a, err := f.Fake.Observe(ctx)
	for i := range a.Pods {
		a.Pods[i].IP = ""
	}
	return a, err
}

// TestClusterPodRanges: every host of a cluster gets its own slice of the
// cluster pod range from the leader, a pinned host keeps its pin, and
// status shows them all.
func TestClusterPodRanges(t *testing.T) {
	src := newFakeSource()
	src.push("v1", map[string]string{"web.yaml": deployment("web", 3, "busybox")})
	tc := newTestCluster(t, src)
	fakes := map[*reconcilertest.Fake]*subnetFake{}
	var mu sync.Mutex
	tc.runtime = func(f *reconcilertest.Fake) reconciler.Runtime {
		mu.Lock()
		defer mu.Unlock()
		sf := &subnetFake{Fake: f}
		fakes[f] = sf
		return sf
	}
	pin := "10.244.7.0/24"
	tc.start("a", 0, nil)
	tc.start("b", 0, nil)
	tc.start("c", 0, func(c *Config) { c.Runtime.PodSubnet = pin })
	tc.waitPodsSpread("3 replicas", replicaNames("web", 3), 3)

	cidr := netip.MustParsePrefix("10.244.0.0/16")
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[string]string{}
		seen := map[string]string{}
		for _, m := range tc.members {
			st := m.agent.Status()
			got[m.name] = st.PodRange
			for _, ms := range st.Cluster.Members {
				if ms.Name == m.name {
					seen[m.name] = ms.PodRange
				}
			}
		}
		ok := got["c"] == pin && got["a"] != "" && got["b"] != "" && got["a"] != got["b"]
		for name, r := range got {
			p, err := netip.ParsePrefix(r)
			ok = ok && err == nil && cidr.Contains(p.Addr()) && p.Bits() == 24 && (name == "c" || r != pin) && seen[name] == r
		}
		if ok {
			for _, m := range tc.members {
				mu.Lock()
				sf := fakes[m.rt]
				mu.Unlock()
				if sf.PodSubnet().String() != got[m.name] {
					t.Errorf("%s: the runtime numbers pods in %s, status says %s", m.name, sf.PodSubnet(), got[m.name])
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod ranges %v (as members see themselves in the cluster view: %v); want distinct /24s of %s, c pinned to %s", got, seen, cidr, pin)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAlonePodRange: an agent on its own takes the first slice of the
// cluster range (the pod subnet kelpie always used), keeps it across a
// restart, and a pin wins.
func TestAlonePodRange(t *testing.T) {
	for _, tc := range []struct {
		name, pin, want string
	}{
		{"first slice", "", "10.244.0.0/24"},
		{"pinned", "10.99.3.0/24", "10.99.3.0/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource()
			src.push("v1", map[string]string{"web.yaml": deployment("web", 2, "busybox")})
			dir := t.TempDir()
			for run := range 2 {
				cfg := DefaultConfig()
				cfg.Repos = []string{"file:///fake"}
				cfg.StateDir = dir
				cfg.Listen = "127.0.0.1:0"
				cfg.Host = reconciler.Host{Name: "solo"}
				cfg.Runtime.PodSubnet = tc.pin
				cfg.Log = testLogger(t)
				rt := &subnetFake{Fake: reconcilertest.NewFake(reconciler.Actual{})}
				a, err := New(cfg, Deps{Source: src, Runtime: rt})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- a.Run(ctx) }()
				deadline := time.Now().Add(20 * time.Second)
				for a.Status().PodRange == "" || len(a.Status().Pods) < 2 {
					if time.Now().After(deadline) {
						cancel()
						t.Fatalf("run %d: no pod range or pods after 20s: %+v", run, a.Status())
					}
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
				<-done
				a.Close()
				if got := a.Status().PodRange; got != tc.want {
					t.Errorf("run %d: pod range %s, want %s", run, got, tc.want)
				}
				if got := rt.PodSubnet().String(); got != tc.want {
					t.Errorf("run %d: runtime numbers pods in %s, want %s", run, got, tc.want)
				}
			}
		})
	}
}

// TestSameButIdle: a leader does not publish an allocation that differs
// from the one in force only in when a host was first seen down.
func TestSameButIdle(t *testing.T) {
	base := func() *netplan.State {
		return &netplan.State{Term: 2, Seq: 3, Slices: map[string]netplan.Slice{
			"a": {Prefix: netip.MustParsePrefix("10.244.0.0/24")},
			"b": {Prefix: netip.MustParsePrefix("10.244.1.0/24")},
		}}
	}
	idle := base()
	idle.Slices["b"] = netplan.Slice{Prefix: netip.MustParsePrefix("10.244.1.0/24"), IdleSince: time.Now()}
	moved := base()
	moved.Slices["b"] = netplan.Slice{Prefix: netip.MustParsePrefix("10.244.2.0/24")}
	gone := base()
	delete(gone.Slices, "b")
	for _, tc := range []struct {
		name string
		s    *netplan.State
		same bool
	}{
		{"equal", base(), true},
		{"only IdleSince", idle, true},
		{"slice moved", moved, false},
		{"slice released", gone, false},
	} {
		if got := sameButIdle(tc.s, base()); got != tc.same {
			t.Errorf("%s: sameButIdle = %v, want %v", tc.name, got, tc.same)
		}
	}
}
