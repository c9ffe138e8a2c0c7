package cli

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// agentE2E is one `kelpie agent` run as a separate process against the
// private test containerd, following a bare repository on disk.
type agentE2E struct {
	t      *testing.T
	bin    string   // the kelpie binary
	flags  []string // the host's runtime and identity flags
	listen string
	repo   *testenv.GitRepo // the work tree commits are made in
	bare   string           // the bare repository the agent follows
	cmd    *exec.Cmd
	log    *bytes.Buffer
	done   chan error
}

// e2eAPIToken is the API token of the end-to-end tests' agents.
const e2eAPIToken = "e2e-api-token-0123456789"

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the agent process following the bare repository; pushes
// must be seen by the ref watch, not a poll.
func (e *agentE2E) start(extra ...string) {
	e.t.Helper()
	e.startRepo(e.bare, append([]string{"--interval", "1h", "--webhook-secret", "s3cret", "--api-token", e2eAPIToken}, extra...)...)
}

// stop sends SIGTERM to the agent by its pid and waits for it to exit 0.
func (e *agentE2E) stop() {
	e.t.Helper()
	if e.cmd == nil {
		return
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		e.t.Fatal(err)
	}
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Fatalf("agent exited with %v\n%s", err, e.log)
		}
	case <-time.After(30 * time.Second):
		e.cmd.Process.Kill()
		e.t.Fatalf("agent did not stop on SIGTERM\n%s", e.log)
	}
	e.cmd = nil
}

// status runs `kelpie status -o json` against the agent.
func (e *agentE2E) status() (agent.Status, bool) {
	res := runMain(e.t, "status", "-o", "json", "--agent", e.listen)
	var s agent.Status
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &s) != nil {
		return s, false
	}
	return s, true
}

// waitFor polls the status until cond holds.
func (e *agentE2E) waitFor(what string, timeout time.Duration, cond func(agent.Status) bool) agent.Status {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var last agent.Status
	for {
		if s, ok := e.status(); ok {
			last = s
			if cond(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			doc, _ := json.MarshalIndent(last, "", "  ")
			e.t.Fatalf("timed out after %s waiting for %s\nstatus: %s\nagent log:\n%s", timeout, what, doc, e.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// push commits the files (replacing apps/) and pushes to the bare repository.
func (e *agentE2E) push(msg string, files map[string]string) string {
	e.t.Helper()
	if err := os.RemoveAll(filepath.Join(e.repo.Dir, "apps")); err != nil {
		e.t.Fatal(err)
	}
	for name, text := range files {
		e.repo.Write("apps/"+name, text)
	}
	sha := e.repo.Commit(msg)
	e.repo.Git("push", "-q", e.bare, "main")
	return sha
}

// pods returns `kelpie ps -o json`: what containerd runs, read without the agent.
func (e *agentE2E) pods() map[string]psPod {
	e.t.Helper()
	res := runMain(e.t, append([]string{"ps", "-o", "json"}, runtimeOnly(e.flags)...)...)
	var out struct{ Pods []psPod }
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &out) != nil {
		e.t.Fatalf("ps: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	m := map[string]psPod{}
	for _, p := range out.Pods {
		m[p.Name] = p
	}
	return m
}

// runtimeOnly drops the host identity flags, which ps does not take.
func runtimeOnly(flags []string) []string {
	var out []string
	for i := 0; i < len(flags); i += 2 {
		if flags[i] != "--node-name" {
			out = append(out, flags[i], flags[i+1])
		}
	}
	return out
}

// runningPods reports whether the agent's status lists exactly names, each
// Running with an address in the test subnet (a Deployment's pod started
// beside an old one stands for its slot, NAME-i).
func runningPods(s agent.Status, names ...string) bool {
	var got []string
	for _, p := range s.Pods {
		if p.State != "Running" || !strings.HasPrefix(p.IP, "10.248.30.") {
			return false
		}
		got = append(got, slotOrName(p.Name))
	}
	slices.Sort(got)
	slices.Sort(names)
	return slices.Equal(got, names)
}

// e2eDeployment is a Deployment in namespace agenttest. command, when set,
// replaces the image's.
func e2eDeployment(name string, replicas int, image, command string) string {
	cmd := ""
	if command != "" {
		cmd = "\n        command: " + command
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: agenttest
spec:
  replicas: %d
  selector:
    matchLabels:
      app: %s
  template:
    metadata:
      labels:
        app: %s
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %s%s
`, name, replicas, name, name, image, cmd)
}

// extraPod is a bare Pod that v2 removes.
const extraPod = `apiVersion: v1
kind: Pod
metadata:
  name: extra
  namespace: agenttest
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
`

// agentGet fetches http://ip/ and returns the body.
func agentGet(ip string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ip + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// agentBridge is the test host's bridge: one fixed name for the test's one
// subnet (10.248.30.0/24), so no run leaves a second route to it.
const agentBridge = "kagt30"

// TestAgentEndToEnd runs `kelpie agent` as its own process against the test
// containerd and a bare repository pushed to with the git CLI: v1 runs; v2
// (scale, new image, a workload removed) converges; a broken commit changes
// nothing and shows file:line in `kelpie status`; a fix converges; the
// webhook checks signatures; SIGTERM stops the agent but no container; a
// restarted agent restarts nothing.
func TestAgentEndToEnd(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Root(t)
	testenv.Binary(t, "git", "git")
	clearEnv(t)
	images := t.TempDir()
	if err := testimage.WriteLayout(images, testimage.Standard()...); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	e := &agentE2E{t: t, bin: nethost.BuildKelpie(t), listen: freeAddr(t), repo: testenv.NewGitRepo(t), bare: filepath.Join(t.TempDir(), "site.git")}
	e.flags = []string{
		"--containerd-address", addr,
		"--containerd-namespace", "kelpie-agent-" + id,
		"--state-dir", t.TempDir(),
		"--pod-subnet", "10.248.30.0/24",
		"--bridge", agentBridge,
		"--image-dir", images,
		"--node-name", "test-host",
	}
	t.Cleanup(func() {
		res := runMain(t, append([]string{"apply", "-f", t.TempDir(), "--prune", "--allow-empty"}, e.flags...)...)
		if res.code != 0 {
			t.Errorf("cleanup apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		// The bridge outlives its pods; a second one with the same subnet
		// would steal the route of the next run.
		if out, err := exec.Command("ip", "link", "del", agentBridge).CombinedOutput(); err != nil {
			t.Logf("delete bridge %s: %v %s", agentBridge, err, out)
		}
	})
	t.Cleanup(func() {
		if e.cmd != nil {
			e.cmd.Process.Kill()
			<-e.done
		}
	})
	testenv.Git(t, filepath.Dir(e.bare), "init", "-q", "--bare", e.bare)

	// v1: web ×2 (nginx), worker ×1 (busybox sleep), extra pod.
	v1 := e.push("v1", map[string]string{
		"web.yaml":    e2eDeployment("web", 2, "nginx:1.7.9", ""),
		"worker.yaml": e2eDeployment("worker", 1, "busybox:1.36", `["sleep", "3600"]`),
		"extra.yaml":  extraPod,
	})
	start := time.Now()
	e.start()
	s := e.waitFor("v1 running", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && runningPods(s, "web-0", "web-1", "worker-0", "extra")
	})
	t.Logf("v1 running %.1fs after the agent started", time.Since(start).Seconds())
	if body, err := agentGet(podIP(s, "web-0")); err != nil || !strings.Contains(body, "Welcome to nginx!") {
		t.Fatalf("GET web-0: %v %q", err, body)
	}

	// v2: scale web to 3, worker busybox → nginx, extra removed.
	v2 := e.push("v2: scale web, worker on nginx, drop extra", map[string]string{
		"web.yaml":    e2eDeployment("web", 3, "nginx:1.7.9", ""),
		"worker.yaml": e2eDeployment("worker", 1, "nginx:1.7.9", ""),
	})
	start = time.Now()
	s = e.waitFor("v2 converged", time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v2 && runningPods(s, "web-0", "web-1", "web-2", "worker-0")
	})
	t.Logf("v2 converged %.1fs after git push returned (sync reason %q)", time.Since(start).Seconds(), s.LastSync.Reason)
	if !strings.HasPrefix(s.LastSync.Reason, "fsnotify") {
		t.Errorf("v2 was synced by %q, want the ref watch", s.LastSync.Reason)
	}
	if body, err := agentGet(podIP(s, "worker-0")); err != nil || !strings.Contains(body, "Welcome to nginx!") {
		t.Fatalf("GET worker-0 (now nginx): %v %q", err, body)
	}
	before := e.pods()

	// A broken commit: nothing changes; status shows file and line.
	broken := e.push("broken", map[string]string{
		"web.yaml":    strings.Replace(e2eDeployment("web", 1, "nginx:1.7.9", ""), "replicas: 1", "replicas: two", 1),
		"worker.yaml": e2eDeployment("worker", 1, "nginx:1.7.9", ""),
	})
	s = e.waitFor("broken refused", time.Minute, func(s agent.Status) bool {
		return s.Pending != nil && s.Pending.Hash == broken && s.LastError != nil
	})
	if s.Applied.Hash != v2 || s.LastError.Kind != agent.KindInvalid || len(s.LastError.Errors) == 0 {
		t.Fatalf("broken: applied %s, lastError %+v", s.Applied.Short(), s.LastError)
	}
	if me := s.LastError.Errors[0]; me.File != "apps/web.yaml" || me.Line != 7 || me.Field != "spec.replicas" {
		t.Fatalf("broken: manifest error %+v, want apps/web.yaml:7 spec.replicas", me)
	}
	if after := e.pods(); !samePods(before, after) {
		t.Fatalf("the broken commit changed the host:\nbefore %+v\nafter  %+v", before, after)
	}
	text := runMain(t, "status", "--agent", e.listen)
	if text.code != 0 || !strings.Contains(text.stdout, "apps/web.yaml:7:13") || !strings.Contains(text.stdout, "Pending:") {
		t.Fatalf("kelpie status:\n%s%s", text.stdout, text.stderr)
	}
	t.Logf("kelpie status with a broken head:\n%s", text.stdout)

	// The fix converges.
	fixed := e.push("fix: web ×1", map[string]string{
		"web.yaml":    e2eDeployment("web", 1, "nginx:1.7.9", ""),
		"worker.yaml": e2eDeployment("worker", 1, "nginx:1.7.9", ""),
	})
	s = e.waitFor("fix converged", time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == fixed && s.Pending == nil && s.LastError == nil && runningPods(s, "web-0", "worker-0")
	})

	// The webhook: a bad signature is refused, a good one syncs.
	seq := s.LastSync.Seq
	if code := postHook(t, e.listen, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("webhook with a bad signature: %d, want 401", code)
	}
	if code := postHook(t, e.listen, "s3cret"); code != http.StatusAccepted {
		t.Fatalf("webhook with a good signature: %d, want 202", code)
	}
	e.waitFor("the webhook's sync", 30*time.Second, func(s agent.Status) bool {
		return s.LastSync != nil && s.LastSync.Seq > seq && strings.HasPrefix(s.LastSync.Reason, "webhook")
	})
	// kelpie sync talks to the agent too.
	if res := runMain(t, "sync", "--agent", e.listen, "--api-token-file", "/nonexistent", "--wait", "30s"); res.code != 1 || !strings.Contains(res.stderr, "--api-token") {
		t.Fatalf("kelpie sync without the API token: exit %d, want 1 and a hint\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := runMain(t, "sync", "--agent", e.listen, "--api-token", e2eAPIToken, "--wait", "30s"); res.code != 0 || !strings.Contains(res.stdout, "Sync ok") {
		t.Fatalf("kelpie sync --wait: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// Drift: a container killed by hand is restarted at once (the first
	// restart of a streak has no back-off), found through containerd's
	// events rather than a poll: the drift tick alone would take up to 10 s.
	ctr := testenv.Binary(t, "ctr", "containerd")
	worker := "worker-0" // the pod of slot worker-0: v2 replaced it beside the old one (maxSurge)
	if st, ok := e.status(); ok {
		for _, p := range st.Pods {
			if slotOrName(p.Name) == "worker-0" {
				worker = p.Name
			}
		}
	}
	if out, err := exec.Command(ctr, "-a", addr, "-n", "kelpie-agent-"+id, "task", "kill", "-s", "SIGKILL", "agenttest_"+worker+"_main").CombinedOutput(); err != nil {
		t.Fatalf("ctr task kill: %v\n%s", err, out)
	}
	start = time.Now()
	e.waitFor("worker-0 restarted", 8*time.Second, func(s agent.Status) bool {
		for _, p := range s.Pods {
			if p.Name == worker {
				return p.State == "Running" && p.Restarts == 1
			}
		}
		return false
	})
	t.Logf("killed worker-0 running again after %.1fs", time.Since(start).Seconds())

	// SIGTERM stops the agent, not the containers.
	running := e.pods()
	e.stop()
	if !strings.Contains(e.log.String(), "workloads keep running") {
		t.Errorf("agent log lacks its goodbye:\n%s", e.log)
	}
	if after := e.pods(); !samePods(running, after) || !allRunning(after) {
		t.Fatalf("stopping the agent changed the host:\nbefore %+v\nafter  %+v", running, after)
	}

	// A restarted agent re-reads the applied commit and restarts nothing.
	e.start()
	s = e.waitFor("first sync after restart", time.Minute, func(s agent.Status) bool { return s.LastSync != nil })
	if s.Applied.Hash != fixed || s.LastSync.Actions != 0 || s.LastSync.Result != "ok" {
		t.Fatalf("after restart: applied %s, last sync %+v", s.Applied.Short(), s.LastSync)
	}
	if testing.Verbose() {
		t.Logf("agent log:\n%s", e.log)
	}
	if after := e.pods(); !samePods(running, after) || !allRunning(after) {
		t.Fatalf("restarting the agent changed the host:\nbefore %+v\nafter  %+v", running, after)
	}
	e.stop()
}

// podIP is the IP of the named pod in the status.
func podIP(s agent.Status, name string) string {
	for _, p := range s.Pods {
		if p.Name == name {
			return p.IP
		}
	}
	for _, p := range s.Pods {
		if slotOrName(p.Name) == name {
			return p.IP
		}
	}
	return ""
}

// slotOrName is the Deployment slot a pod started beside its slot's old
// pod holds (NAME-i for NAME-i-HASH, see reconciler.SurgeName), else the
// pod's name.
func slotOrName(name string) string {
	if slot, ok := reconciler.SlotOf(name); ok {
		return slot
	}
	return name
}

// samePods reports whether two ps results hold the same pods with the same
// spec hashes, container states and restart counts.
func samePods(a, b map[string]psPod) bool {
	if len(a) != len(b) {
		return false
	}
	for name, p := range a {
		q, ok := b[name]
		if !ok || p.Hash != q.Hash || p.IP != q.IP || len(p.Containers) != len(q.Containers) {
			return false
		}
		for i := range p.Containers {
			if p.Containers[i] != q.Containers[i] {
				return false
			}
		}
	}
	return true
}

// allRunning reports whether every container of every pod runs.
func allRunning(pods map[string]psPod) bool {
	for _, p := range pods {
		for _, c := range p.Containers {
			if c.State != "Running" {
				return false
			}
		}
	}
	return len(pods) > 0
}

// postHook posts a GitHub push event signed with secret to the agent.
func postHook(t *testing.T, listen, secret string) int {
	t.Helper()
	body := `{"ref":"refs/heads/main"}`
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, err := http.NewRequest("POST", "http://"+listen+"/hooks/git", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
