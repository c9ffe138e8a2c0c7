package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
	"github.com/kelpie-dev/kelpie/internal/testimage"
)

// hostEnv is one private kelpie host for a test: its own containerd
// namespace, state dir, pod subnet and bridge, and an image dir holding the
// test images, so no registry is needed.
type hostEnv struct {
	t        *testing.T
	flags    []string
	manifest string
}

// newHostEnv prepares a host and removes everything it ran when the test
// ends. It clears the KELPIE_* environment after reading the containerd
// address from it.
func newHostEnv(t *testing.T, subnet string) *hostEnv {
	t.Helper()
	addr := testenv.ContainerdAddress(t)
	testenv.Root(t)
	clearEnv(t)
	images := t.TempDir()
	if err := testimage.WriteLayout(images, testimage.Standard()...); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	h := &hostEnv{t: t, manifest: t.TempDir(), flags: []string{
		"--containerd-address", addr,
		"--containerd-namespace", "kelpie-cli-" + id,
		"--state-dir", t.TempDir(),
		"--pod-subnet", subnet,
		"--bridge", "kcli" + id,
		"--image-dir", images,
	}}
	t.Cleanup(func() {
		empty := t.TempDir()
		res := runMain(t, append([]string{"apply", "-f", empty, "--prune", "--allow-empty", "--node-name", "test-host"}, h.flags...)...)
		if res.code != 0 {
			t.Errorf("cleanup apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		// The host's pod bridge outlives its pods by design; this host is
		// the test's, so its bridge goes too.
		if out, err := exec.Command("ip", "link", "delete", "kcli"+id).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			t.Errorf("cleanup: delete bridge kcli%s: %v: %s", id, err, out)
		}
	})
	return h
}

// newPrivateHost is newHostEnv for a test that needs hosts of its own,
// several in one process (see nethost.New): the host's pods are removed
// through `kelpie apply --prune --allow-empty` run in this process.
func newPrivateHost(t *testing.T, addr, tag string) (*hostEnv, *nethost.Host) {
	t.Helper()
	hc := nethost.New(t, addr, tag)
	clearEnv(t)
	h := &hostEnv{t: t, manifest: t.TempDir(), flags: hc.Flags()}
	hc.Empty = func() error {
		res := runMain(t, append([]string{"apply", "-f", t.TempDir(), "--prune", "--allow-empty", "--node-name", "test-host"}, h.flags...)...)
		if res.code != 0 {
			return fmt.Errorf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		return nil
	}
	return h, hc
}

// write replaces the host's manifests with text.
func (h *hostEnv) write(text string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.manifest, "app.yaml"), []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// run runs a kelpie command against the host with its manifests.
func (h *hostEnv) run(args ...string) result {
	h.t.Helper()
	full := append(append([]string{}, args...), h.flags...)
	if args[0] == "plan" || args[0] == "apply" {
		full = append(full, "-f", h.manifest, "--node-name", "test-host")
	}
	return runMain(h.t, full...)
}

// pods returns the pods `kelpie ps -o json` reports.
func (h *hostEnv) pods() []psPod {
	h.t.Helper()
	res := h.run("ps", "-o", "json")
	var out struct{ Pods []psPod }
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &out) != nil {
		h.t.Fatalf("ps: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	return out.Pods
}

// nginxDeployment is the seed example with a namespace of its own and a
// short grace period (busybox httpd as PID 1 ignores SIGTERM).
func nginxDeployment(replicas int) string {
	return testenv.Deployment{Name: "nginx-deployment", Namespace: "clitest", Replicas: replicas,
		Container: testenv.Container{ContainerName: "nginx", Image: "nginx:1.7.9", Ports: []int{80}, Grace: new(1)}}.YAML()
}

// TestApplyEndToEnd applies the seed Deployment to a real containerd with the
// real CNI plugins, fetches its pages from the host, checks plan is empty
// after apply, and scales 2 → 5 → 1.
func TestApplyEndToEnd(t *testing.T) {
	h := newHostEnv(t, "10.248.0.0/24")
	h.write(nginxDeployment(2))

	res := h.run("plan")
	if res.code != 2 || !strings.Contains(res.stdout, "+ create pod clitest/nginx-deployment-0") {
		t.Fatalf("plan before apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = h.run("apply")
	if res.code != 0 || !strings.Contains(res.stdout, "2 done, 0 failed") {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	pods := h.pods()
	if len(pods) != 2 {
		t.Fatalf("ps: %d pods, want 2: %+v", len(pods), pods)
	}
	for _, p := range pods {
		if len(p.Containers) != 1 || p.Containers[0].State != "Running" || !strings.HasPrefix(p.IP, "10.248.0.") {
			t.Fatalf("pod %s: %+v", p.Name, p)
		}
		page := fetch(t, "http://"+p.IP+"/")
		if !strings.Contains(page, "Welcome to nginx!") {
			t.Errorf("pod %s at %s served %q", p.Name, p.IP, page)
		}
	}
	res = h.run("plan", "-o", "json")
	if res.code != 0 || !strings.Contains(res.stdout, `"actions": []`) {
		t.Fatalf("plan after apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	h.write(nginxDeployment(5))
	if res = h.run("apply"); res.code != 0 || !strings.Contains(res.stdout, "3 done") {
		t.Fatalf("scale to 5: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if n := len(h.pods()); n != 5 {
		t.Fatalf("after scaling to 5: %d pods", n)
	}
	h.write(nginxDeployment(1))
	res = h.run("apply")
	if res.code != 0 || len(h.pods()) != 5 || !strings.Contains(res.stdout, "no longer desired") {
		t.Fatalf("scale to 1 without --prune must keep the pods: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res = h.run("apply", "--prune"); res.code != 0 {
		t.Fatalf("scale to 1 with --prune: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	pods = h.pods()
	if len(pods) != 1 || pods[0].Name != "nginx-deployment-0" {
		t.Fatalf("after scaling to 1: %+v", pods)
	}
	if res = h.run("plan", "--prune"); res.code != 0 {
		t.Fatalf("plan after prune: exit %d\n%s", res.code, res.stdout)
	}
}

// TestApplyRefusesBadInput checks invalid manifests and an empty manifest
// directory change nothing on a host that runs pods.
func TestApplyRefusesBadInput(t *testing.T) {
	h := newHostEnv(t, "10.248.1.0/24")
	h.write(nginxDeployment(1))
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	h.write(strings.Replace(nginxDeployment(1), "replicas: 1", "replicas: one", 1))
	res := h.run("apply", "--prune")
	if res.code != 1 || !strings.Contains(res.stderr, "app.yaml:7:13: spec.replicas: expected integer") {
		t.Fatalf("invalid manifest: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	h.write("")
	res = h.run("apply", "--prune")
	if res.code != 1 || !strings.Contains(res.stderr, "--allow-empty") {
		t.Fatalf("empty manifests: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if n := len(h.pods()); n != 1 {
		t.Fatalf("bad input removed pods: %d left, want 1", n)
	}
}

// fetch GETs url, retrying briefly while the server starts.
func fetch(t *testing.T, url string) string {
	t.Helper()
	body, err := nethost.Get(url, 10*time.Second)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return body
}

// TestLogsImageAndVolumeCommands covers `kelpie logs`, `kelpie image import`
// and `kelpie volume rm` on a real host: a claim's data outlives its pod and
// prune, and only volume rm deletes it, never while a pod mounts it.
func TestLogsImageAndVolumeCommands(t *testing.T) {
	h := newHostEnv(t, "10.248.2.0/24")
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := testimage.BuildArchive(archive, testimage.Busybox()); err != nil {
		t.Fatal(err)
	}
	res := h.run("image", "import", archive)
	if res.code != 0 || !strings.Contains(res.stdout, "imported docker.io/library/busybox:1.36") {
		t.Fatalf("image import: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	h.write(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: clitest}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer, namespace: clitest}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "echo hello from kelpie; echo kept > /data/file; exec sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
`)
	if res = h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res = h.run("logs", "clitest/writer")
		if res.code == 0 && strings.Contains(res.stdout, "hello from kelpie") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res = h.run("volume", "rm", "clitest/data"); res.code != 1 {
		t.Fatalf("volume rm of a mounted claim: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	h.write("")
	if res = h.run("apply", "--prune", "--allow-empty"); res.code != 0 || !strings.Contains(res.stdout, "claim clitest/data") {
		t.Fatalf("prune: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if n := len(h.pods()); n != 0 {
		t.Fatalf("%d pods after prune", n)
	}
	matches, _ := filepath.Glob(filepath.Join(h.flagValue("--state-dir"), "volumes", "*", "data", "file"))
	if len(matches) != 1 {
		t.Fatalf("the claim's data did not survive prune: %v", matches)
	}
	if res = h.run("volume", "rm", "clitest/data"); res.code != 0 {
		t.Fatalf("volume rm: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if matches, _ = filepath.Glob(filepath.Join(h.flagValue("--state-dir"), "volumes", "*", "data", "file")); len(matches) != 0 {
		t.Fatalf("volume rm left %v", matches)
	}
}

// flagValue returns the value of one of the host's flags.
func (h *hostEnv) flagValue(name string) string {
	for i := 0; i+1 < len(h.flags); i++ {
		if h.flags[i] == name {
			return h.flags[i+1]
		}
	}
	h.t.Fatalf("no flag %s", name)
	return ""
}
