package host

import (
	"fmt"
	"sync"
	"testing"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// concurrentPods is how many pods the concurrent removal test removes at
// once: pruning four at once was enough to make the bridge plugin's DEL
// fail (iptables-nft, CHAIN_DEL: Device or resource busy).
const concurrentPods = 8

// TestRemovePodsConcurrently removes pods with sandboxes (half of them
// with a host port, so portmap's DEL runs too) all at once through the
// runtime, as an apply pruning them does: every removal succeeds and
// nothing of any pod is left (netns, IP lease, mounts, ...).
func TestRemovePodsConcurrently(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	pods := make([]reconciler.Pod, concurrentPods)
	for i := range pods {
		pods[i] = busyboxPod(fmt.Sprintf("prune-%d", i), "exec sleep 1000")
		if i%2 == 0 {
			pods[i].Containers[0].Ports = []reconciler.Port{{ContainerPort: 80, HostPort: int32(31000 + i), Protocol: "TCP"}}
		}
		if err := tr.CreatePod(ctx, pods[i]); err != nil {
			t.Fatalf("CreatePod %s: %v", pods[i].Name, err)
		}
	}
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tr.RemovePod(ctx, p.Namespace, p.Name, 0)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("RemovePod %s: %v", pods[i].Name, err)
		}
	}
	for _, p := range pods {
		tr.assertPodGone(t, p.Namespace, p.Name)
	}
}
