package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
)

// statefulDB is a StatefulSet of three pods governed by the headless
// Service db. Each pod writes the version that first ran on its claim to
// /data/first (once: a later version finds it there), and becomes Ready
// (a readiness exec probe) two seconds after it starts.
func statefulDB(ns, version string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: db, namespace: %[1]s}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: tcp, port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: %[1]s}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.36
        command: ["sh", "-c", "[ -f /data/first ] || echo $VERSION > /data/first; sleep 2; touch /tmp/ready; exec sleep 3600"]
        env: [{name: VERSION, value: %[2]q}]
        ports: [{name: tcp, containerPort: 5432}]
        readinessProbe:
          exec: {command: ["test", "-f", "/tmp/ready"]}
          periodSeconds: 1
          failureThreshold: 1
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Mi}}}
`, ns, version)
}

// TestStatefulSetEndToEnd runs `kelpie agent` against the real containerd
// with a StatefulSet of three: its pods start in ordinal order, each once
// the one before is Ready; each answers the cluster DNS by its stable name
// db-N.db.NS.svc.cluster.local; a rolling update replaces them from the
// highest ordinal down, one at a time, and every pod finds on its claim
// data-db-N the data its first version wrote.
func TestStatefulSetEndToEnd(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	testenv.Binary(t, "busybox", "busybox-static")
	e, hc := newAgentHost(t, addr, "sts")
	ns := fmt.Sprintf("sts%d", hc.Octet)
	names := []string{"db-0", "db-1", "db-2"}

	v1 := e.push("v1", map[string]string{"db.yaml": statefulDB(ns, "v1")})
	// The cluster DNS answers pods of the cluster range only.
	e.start("--cluster-cidr", "10.248.0.0/16")
	// Ordered start: when each pod first shows, every lower one is Ready.
	seen := map[string]bool{}
	deadline := time.Now().Add(2 * time.Minute)
	var s agent.Status
	for {
		var ok bool
		if s, ok = e.status(); ok {
			ready := map[string]bool{}
			for _, p := range s.Pods {
				ready[p.Name] = p.State == "Running" && p.PodReady
			}
			for i, n := range names {
				if _, there := ready[n]; !there || seen[n] {
					continue
				}
				seen[n] = true
				for _, lower := range names[:i] {
					if !ready[lower] {
						t.Errorf("%s runs while %s is not Ready", n, lower)
					}
				}
			}
			if s.Applied != nil && s.Applied.Hash == v1 && readyPods(s, "db-") == 3 && strings.HasPrefix(s.DNS, "listening") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("v1 did not start: pods %+v, waiting %v, DNS %q\nagent log:\n%s", s.Pods, s.Waiting, s.DNS, e.log)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Stable names: db-N.db.NS.svc.cluster.local is db-N's address.
	gw := strings.TrimPrefix(strings.TrimSuffix(s.DNS, ":53"), "listening on ")
	netns := stsNetns(t, hc.StateDir, ns, "db-0")
	for _, p := range s.Pods {
		name := fmt.Sprintf("%s.db.%s.svc.cluster.local", p.Name, ns)
		out, err := exec.Command("nsenter", "--net="+netns, "busybox", "nslookup", name, gw).CombinedOutput()
		if err != nil || !strings.Contains(string(out), p.IP) {
			t.Errorf("nslookup %s %s from db-0: %v\n%s\nwant %s", name, gw, err, out, p.IP)
		}
	}

	// Rolling update: highest ordinal first, one at a time.
	v2 := e.push("v2", map[string]string{"db.yaml": statefulDB(ns, "v2")})
	var order []string
	updated := map[string]bool{}
	deadline = time.Now().Add(3 * time.Minute)
	for len(order) < 3 {
		for _, n := range names {
			if !updated[n] && stsVersion(hc, ns, n) == "v2" {
				updated[n] = true
				order = append(order, n)
			}
		}
		if time.Now().After(deadline) {
			s, _ := e.status()
			t.Fatalf("v2 did not roll out: updated %v; pods %+v, waiting %v", order, s.Pods, s.Waiting)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Join(order, ",") != "db-2,db-1,db-0" {
		t.Errorf("updated in order %v, want db-2, db-1, db-0", order)
	}
	e.waitFor("v2 Ready", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v2 && readyPods(s, "db-") == 3
	})
	// Each claim kept what v1 wrote.
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(hc.StateDir, "volumes", ns+"_data-"+n, "data", "first"))
		if err != nil || strings.TrimSpace(string(b)) != "v1" {
			t.Errorf("claim data-%s: first = %q, %v; want v1 kept across the update", n, b, err)
		}
	}
	e.stop()
}

// stsVersion is the VERSION of pod ns/name's container main as containerd
// holds it; "" while it has none (the pod is being replaced).
func stsVersion(hc *nethost.Host, ns, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := hc.CD.LoadContainer(ctx, ns+"_"+name+"_main")
	if err != nil {
		return ""
	}
	spec, err := c.Spec(ctx)
	if err != nil || spec.Process == nil {
		return ""
	}
	for _, kv := range spec.Process.Env {
		if v, ok := strings.CutPrefix(kv, "VERSION="); ok {
			return v
		}
	}
	return ""
}

// stsNetns is the network namespace file of pod ns/name under stateDir.
func stsNetns(t *testing.T, stateDir, ns, name string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(stateDir, "netns", "*"+ns+"_"+name+"*"))
	if len(matches) == 0 {
		ents, _ := os.ReadDir(filepath.Join(stateDir, "netns"))
		var all []string
		for _, e := range ents {
			all = append(all, e.Name())
		}
		t.Fatalf("no network namespace of pod %s/%s; there are %v", ns, name, all)
	}
	return matches[0]
}
