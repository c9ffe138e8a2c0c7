package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// probeWeb is a one-replica Deployment whose busybox httpd serves dir (a
// hostPath the test controls) at /www; the container writes /www/healthz
// when it starts, and a liveness probe GETs it every second.
func probeWeb(ns, dir string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %s
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.36
        command: ["sh", "-c", "echo ok > /www/healthz && exec httpd -f -p 8080 -h /www"]
        livenessProbe:
          httpGet:
            path: /healthz
            port: 8080
          periodSeconds: 1
          failureThreshold: 2
        volumeMounts:
        - name: www
          mountPath: /www
      volumes:
      - name: www
        hostPath:
          path: %s
          type: Directory
`, ns, dir)
}

// probeGated is a two-replica Deployment, one replaced at a time, whose
// readiness probe checks /tmp/ready; script is the container's shell
// command and version its VERSION variable.
func probeGated(ns, script, version string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: gated
  namespace: %s
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
      maxSurge: 0
  selector:
    matchLabels:
      app: gated
  template:
    metadata:
      labels:
        app: gated
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.36
        command: ["sh", "-c", %q]
        env:
        - name: VERSION
          value: %q
        readinessProbe:
          exec:
            command: ["test", "-f", "/tmp/ready"]
          periodSeconds: 1
          failureThreshold: 1
`, ns, script, version)
}

// podOf returns the status of the pod name.
func podOf(s agent.Status, name string) (agent.PodStatus, bool) {
	for _, p := range s.Pods {
		if p.Name == name {
			return p, true
		}
	}
	return agent.PodStatus{}, false
}

// TestProbesEndToEnd runs `kelpie agent` against the real containerd with
// probes: a liveness httpGet probe kills a busybox httpd that stopped
// serving /healthz and the restarted container, which serves it again,
// stays up; a readiness exec probe holds a rolling update whose new
// version never becomes Ready, with the other old replica kept running,
// until a fixed version completes it.
func TestProbesEndToEnd(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	e, hc := newAgentHost(t, addr, "probes")
	ns := fmt.Sprintf("probe%d", hc.Octet)
	prefix := hc.SubnetPrefix()

	www := t.TempDir()
	if err := os.Chmod(www, 0o755); err != nil {
		t.Fatal(err)
	}
	healthz := filepath.Join(www, "healthz")
	const ready = "touch /tmp/ready && exec sleep 3600"

	v1 := e.push("v1: web with a liveness probe, gated with a readiness probe", map[string]string{
		"web.yaml":   probeWeb(ns, www),
		"gated.yaml": probeGated(ns, ready, "v1"),
	})
	e.start("--allow-host-path", www)
	s := e.waitFor("v1 running and Ready", 2*time.Minute, func(s agent.Status) bool {
		if s.Applied == nil || s.Applied.Hash != v1 || !runningIn(s, prefix, "web-0", "gated-0", "gated-1") {
			return false
		}
		for _, p := range s.Pods {
			if !p.PodReady {
				return false
			}
		}
		return true
	})
	if _, err := os.Stat(healthz); err != nil {
		t.Fatalf("the container did not write healthz into the hostPath: %v", err)
	}
	web, _ := podOf(s, "web-0")
	restarts := web.Restarts

	// 1. Liveness: healthz gone, httpd answers 404; two failures kill it
	// and the restarted container writes healthz again.
	if err := os.Remove(healthz); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s = e.waitFor("web-0 restarted by its liveness probe", time.Minute, func(s agent.Status) bool {
		p, ok := podOf(s, "web-0")
		return ok && p.Restarts > restarts && p.State == "Running" && len(p.Containers) == 1 && p.Containers[0].State == "Running"
	})
	t.Logf("web-0 restarted %.1fs after healthz was removed", time.Since(start).Seconds())
	web, _ = podOf(s, "web-0")
	restarts = web.Restarts
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(healthz); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted container did not write healthz again")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Serving again, it stays up: no restart over 5 probe periods (the two
	// failures that kill it would take 2).
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		if s, ok := e.status(); ok {
			if p, ok := podOf(s, "web-0"); ok && p.Restarts != restarts {
				t.Fatalf("web-0 restarted again while serving healthz: %d restarts, had %d", p.Restarts, restarts)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body, err := agentGetPath(podIP(s, "web-0"), 8080, "/healthz"); err != nil || strings.TrimSpace(body) != "ok" {
		t.Fatalf("GET web-0 /healthz after the restart: %v %q", err, body)
	}

	// 2. Readiness gates the rollout: v2 never creates /tmp/ready.
	old := e.pods()
	v2 := e.push("v2: gated never Ready", map[string]string{
		"web.yaml":   probeWeb(ns, www),
		"gated.yaml": probeGated(ns, "exec sleep 3600", "v2"),
	})
	s = e.waitFor("v2's first replacement running, not Ready, the rollout held", time.Minute, func(s agent.Status) bool {
		if s.Applied == nil || s.Applied.Hash != v2 {
			return false
		}
		pods := e.pods()
		replaced, kept := "", ""
		for _, name := range []string{"gated-0", "gated-1"} {
			p, ok := pods[name]
			switch {
			case !ok:
				return false
			case p.Hash != old[name].Hash:
				replaced = name
			default:
				kept = name
			}
		}
		if replaced == "" || kept == "" {
			return false
		}
		r, ok1 := podOf(s, replaced)
		k, ok2 := podOf(s, kept)
		return ok1 && ok2 && r.State == "Running" && len(r.Containers) == 1 && r.Containers[0].State == "Running" &&
			!r.PodReady && k.State == "Running" && k.PodReady && holds(s, "gated")
	})
	// The hold lasts: over 5 probe periods the new pod stays not Ready and
	// the old one is not replaced.
	held := e.pods()
	end = time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		pods := e.pods()
		for _, name := range []string{"gated-0", "gated-1"} {
			if pods[name].Hash != held[name].Hash {
				t.Fatalf("%s was replaced while the rollout should hold: %+v", name, pods[name])
			}
		}
		if s, ok := e.status(); ok && !holds(s, "gated") {
			t.Fatalf("the rollout no longer waits: %v\npods %+v", s.Waiting, s.Pods)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("rollout held: %v", s.Waiting)

	// v3 fixes it: both replicas replaced, Ready, nothing waits.
	v3 := e.push("v3: gated Ready again", map[string]string{
		"web.yaml":   probeWeb(ns, www),
		"gated.yaml": probeGated(ns, ready, "v3"),
	})
	start = time.Now()
	e.waitFor("v3 rolled out", 2*time.Minute, func(s agent.Status) bool {
		if s.Applied == nil || s.Applied.Hash != v3 || !runningIn(s, prefix, "web-0", "gated-0", "gated-1") || holds(s, "gated") {
			return false
		}
		for _, name := range []string{"gated-0", "gated-1"} {
			if p, _ := podOf(s, name); !p.PodReady || hc.ContainerEnv(ns, name, "main", "VERSION") != "v3" {
				return false
			}
		}
		return true
	})
	t.Logf("v3 rolled out %.1fs after the push", time.Since(start).Seconds())

	e.stop()
	log := e.log.String()
	if !strings.Contains(log, "event=Kill") || !strings.Contains(log, "probe=liveness") || !strings.Contains(log, "pod="+ns+"/web-0") {
		t.Fatalf("the agent log has no liveness Kill of web-0:\n%s", log)
	}
	if !strings.Contains(log, "event=Ready") || !strings.Contains(log, "probe=readiness") {
		t.Errorf("the agent log has no readiness transition:\n%s", log)
	}
}

// holds reports whether the status lists a rolling update of the pods of
// Deployment name as waiting.
func holds(s agent.Status, name string) bool {
	for _, w := range s.Waiting {
		if strings.Contains(w, "/"+name+"-") && strings.Contains(w, "rolling update") {
			return true
		}
	}
	return false
}

// agentGetPath fetches http://ip:port/path and returns the body.
func agentGetPath(ip string, port int, path string) (string, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("http://%s:%d%s", ip, port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return string(body), err
}
