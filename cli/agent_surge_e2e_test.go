package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// surgeWeb is a two-replica Deployment with maxSurge 1 and maxUnavailable
// 0 whose pods become Ready (a readiness exec probe) two seconds after they
// start; version is its VERSION variable.
func surgeWeb(ns, version string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: surge
  namespace: %s
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      app: surge
  template:
    metadata:
      labels:
        app: surge
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.36
        command: ["sh", "-c", "sleep 2 && touch /tmp/ready && exec sleep 3600"]
        env:
        - name: VERSION
          value: %q
        readinessProbe:
          exec:
            command: ["test", "-f", "/tmp/ready"]
          periodSeconds: 1
          failureThreshold: 1
`, ns, version)
}

// TestSurgeEndToEnd runs `kelpie agent` against the real containerd and
// rolls a Deployment of 2 with maxSurge 1 and maxUnavailable 0 to a new
// version: each new pod starts beside the old one under a surge name, the
// old one goes once the new one is Ready, and the host never runs fewer
// than 2 Ready pods of it nor more than 3 pods.
func TestSurgeEndToEnd(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	e, hc := newAgentHost(t, addr, "surge")
	ns := fmt.Sprintf("surge%d", hc.Octet)

	v1 := e.push("v1", map[string]string{"surge.yaml": surgeWeb(ns, "v1")})
	e.start()
	e.waitFor("v1 running and Ready", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && readyPods(s, "surge-") == 2 && len(s.Pods) == 2
	})

	v2 := e.push("v2", map[string]string{"surge.yaml": surgeWeb(ns, "v2")})
	start := time.Now()
	maxPods, minReady := 2, 2
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if s, ok := e.status(); ok {
			minReady = min(minReady, readyPods(s, "surge-"))
			n, surged := 0, 0
			for _, p := range s.Pods {
				if strings.HasPrefix(p.Name, "surge-") {
					n++
					if _, ok := reconciler.SlotOf(p.Name); ok && p.PodReady && hc.ContainerEnv(ns, p.Name, "main", "VERSION") == "v2" {
						surged++
					}
				}
			}
			maxPods = max(maxPods, n)
			if s.Applied != nil && s.Applied.Hash == v2 && n == 2 && surged == 2 && !holds(s, "surge") {
				break
			}
		}
		if pods := e.pods(); len(pods) > maxPods {
			maxPods = len(pods) // containerd's view, between the agent's observations
		}
		if time.Now().After(deadline) {
			s, _ := e.status()
			t.Fatalf("v2 did not roll out: pods %+v, waiting %v", s.Pods, s.Waiting)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("v2 rolled out in %.1fs: at most %d pods, at least %d Ready", time.Since(start).Seconds(), maxPods, minReady)
	if maxPods != 3 || minReady < 2 {
		t.Errorf("at most %d pods (want 3: 2 and one surge), at least %d Ready (want 2)", maxPods, minReady)
	}
	e.stop()
}

// readyPods counts the Running, Ready pods whose names start with prefix.
func readyPods(s agent.Status, prefix string) int {
	n := 0
	for _, p := range s.Pods {
		if strings.HasPrefix(p.Name, prefix) && p.State == "Running" && p.PodReady {
			n++
		}
	}
	return n
}
