package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
)

// rig is one private kelpie host of a fault test (see nethost.New) with
// the kelpie binary, a git work tree and the bare repository it pushes to,
// and at most one `kelpie agent` process at a time.
type rig struct {
	t      *testing.T
	bin    string
	hc     *nethost.Host
	ns     string // the Kubernetes namespace of the test's pods
	repo   *testenv.GitRepo
	bare   string
	listen string
	node   string         // the host's name (--node-name)
	flags  []string       // the host's runtime flags and --node-name
	net    *nethost.Netns // the network namespace the host's processes run in; nil: the machine's

	agent     *proc
	logs      []string // the logs of the agent processes that ended
	destroyed bool
}

// agentStatus is what the agent's /api/v1/status answers.
type agentStatus = agent.Status

// proc is a kelpie process of the rig, in a process group of its own so
// that the CNI plugins it runs can be waited for after it is killed.
type proc struct {
	cmd  *exec.Cmd
	done chan error
	log  *lockedBuffer
}

// apiToken is the API token of the agents of the suite.
const apiToken = "faults-api-token-0123456789"

// newRig makes a private host on the containerd at addr, with the kelpie
// binary built and an empty bare repository. When the test ends the agent
// is killed, and then the host is emptied and checked (nethost.New).
func newRig(t *testing.T, addr string) *rig {
	t.Helper()
	return newHostRig(t, addr, nethost.BuildKelpie(t), nil, "test-host", freeAddr(t))
}

// newHostRig is newRig for a host named node, running the kelpie binary
// bin, whose processes run in the network namespace netns (nil: the
// machine's) and whose agent listens on listen. A network namespace must
// outlive the rig: make it before.
func newHostRig(t *testing.T, addr, bin string, netns *nethost.Netns, node, listen string) *rig {
	t.Helper()
	testenv.Binary(t, "git", "git")
	hc := nethost.New(t, addr, "flt")
	r := &rig{
		t: t, bin: bin, hc: hc,
		ns:     fmt.Sprintf("faults%d", hc.Octet),
		repo:   testenv.NewGitRepo(t),
		bare:   testenv.NewBareRepo(t),
		listen: listen,
		node:   node,
		flags:  append(hc.Flags(), "--node-name", node),
		net:    netns,
	}
	if netns != nil {
		hc.NetNS = netns.Name
	}
	hc.Empty = func() error {
		out, err := r.kelpie(append([]string{"apply", "-f", t.TempDir(), "--prune", "--allow-empty"}, r.flags...)...)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if r.agent != nil {
			r.kill()
		}
		if t.Failed() {
			for i, l := range r.logs {
				t.Logf("log of agent process %d:\n%s", i+1, l)
			}
		}
	})
	return r
}

// destroy kills the agent, if one runs, removes every pod of the host and
// checks nothing is left (nethost.Host.Destroy), once: for a test that
// must do so before a cleanup of its own.
func (r *rig) destroy() {
	r.t.Helper()
	if r.destroyed {
		return
	}
	r.destroyed = true
	if r.agent != nil {
		r.kill()
	}
	r.hc.Destroy()
}

// env is the environment of the kelpie processes: the test's, without
// KELPIE_* variables (flags say everything).
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KELPIE_") {
			out = append(out, kv)
		}
	}
	return out
}

// command returns a command running the kelpie binary in the host's
// network namespace.
func (r *rig) command(args ...string) *exec.Cmd {
	if r.net != nil {
		return r.net.Command(r.bin, args...)
	}
	return exec.Command(r.bin, args...)
}

// kelpie runs a kelpie command to its end and returns its output.
func (r *rig) kelpie(args ...string) (string, error) {
	cmd := r.command(args...)
	cmd.Env = env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// start runs `kelpie agent` following repo (a path or URL) with the host's
// flags and extra ones.
func (r *rig) start(repo string, extra ...string) {
	r.t.Helper()
	if r.agent != nil {
		r.t.Fatal("an agent already runs")
	}
	args := append([]string{"agent", "--repo", repo, "--ref", "main", "--path", "apps", "--listen", r.listen,
		"--api-token", apiToken}, r.flags...)
	p := &proc{log: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = r.command(append(args, extra...)...)
	p.cmd.Env = env()
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 10 * time.Second
	if err := p.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	r.agent = p
}

// kill SIGKILLs the agent by its pid and waits for it and for the
// processes it started (CNI plugins) to end, as they would after a real
// crash.
func (r *rig) kill() {
	r.t.Helper()
	p := r.agent
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.t.Fatalf("kill agent %d: %v", p.cmd.Process.Pid, err)
	}
	<-p.done
	waitGroupGone(r.t, p.cmd.Process.Pid)
	r.logs = append(r.logs, p.log.String())
	r.agent = nil
}

// stop sends SIGTERM to the agent and waits for it to exit 0.
func (r *rig) stop() {
	r.t.Helper()
	p := r.agent
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			r.t.Errorf("agent exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Errorf("agent did not stop on SIGTERM within 30s")
		r.kill()
		return
	}
	r.logs = append(r.logs, p.log.String())
	r.agent = nil
}

// log returns the running agent's log so far.
func (r *rig) log() string {
	if r.agent == nil {
		return ""
	}
	return r.agent.log.String()
}

// status reads the agent's /api/v1/status.
func (r *rig) status() (agent.Status, error) {
	var s agent.Status
	req, err := http.NewRequest(http.MethodGet, "http://"+r.listen+"/api/v1/status", nil)
	if err != nil {
		return s, err
	}
	req.Header.Set("Authorization", "Bearer "+apiToken) // beyond loopback reads need it too
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /api/v1/status: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// waitFor polls the agent's status until cond holds, failing the test with
// the last status and the agent's log when timeout passes first.
func (r *rig) waitFor(what string, timeout time.Duration, cond func(agent.Status) bool) agent.Status {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	var last agent.Status
	var lastErr error
	for {
		s, err := r.status()
		if err == nil {
			last = s
			if cond(s) {
				return s
			}
		}
		lastErr = err
		if time.Now().After(deadline) {
			doc, _ := json.MarshalIndent(last, "", "  ")
			r.t.Fatalf("timed out after %v waiting for %s (last status error: %v)\nstatus: %s\nagent log:\n%s", timeout, what, lastErr, doc, r.log())
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// push replaces apps/ of the work tree with files, commits and pushes to
// the bare repository; it returns the commit.
func (r *rig) push(msg string, files map[string]string) string {
	r.t.Helper()
	if err := os.RemoveAll(filepath.Join(r.repo.Dir, "apps")); err != nil {
		r.t.Fatal(err)
	}
	for name, text := range files {
		r.repo.Write("apps/"+name, text)
	}
	sha := r.repo.Commit(msg)
	r.repo.Push(r.bare)
	return sha
}

// site is one desired state of a test: busybox pods that sleep, by name,
// each with the version that makes its spec.
type site map[string]string

// files renders the site as one manifest file per pod in the rig's
// namespace.
func (r *rig) files(s site) map[string]string {
	out := map[string]string{}
	for name, version := range s {
		out[name+".yaml"] = testenv.Pod{Name: name, Namespace: r.ns,
			Container: testenv.Container{Command: `"sleep", "3600"`, Version: version, Grace: new(0)}}.YAML()
	}
	return out
}

// want is what a host running s holds.
func (r *rig) want(s site) nethost.Want {
	w := nethost.Want{Pods: map[string]nethost.WantPod{}}
	for name := range s {
		w.Pods[r.ns+"/"+name] = nethost.WantPod{Containers: []string{"main"}}
	}
	return w
}

// converged reports whether the status says the agent applied commit
// without an error and runs exactly the pods of s, each Running with an
// address of the host's pod subnet.
func (r *rig) converged(s agent.Status, commit string, want site) bool {
	if s.Applied == nil || s.Applied.Hash != commit || s.LastError != nil || s.Pending != nil {
		return false
	}
	var got, names []string
	for _, p := range s.Pods {
		if p.State != "Running" || !strings.HasPrefix(p.IP, r.hc.SubnetPrefix()) {
			return false
		}
		got = append(got, p.Name)
	}
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(got)
	slices.Sort(names)
	return slices.Equal(got, names)
}

// waitConverged waits until the agent reports commit applied with the
// pods of want running, and then checks the host from outside kelpie:
// exactly those pods, nothing leaked.
func (r *rig) waitConverged(what string, timeout time.Duration, commit string, want site) agent.Status {
	r.t.Helper()
	s := r.waitFor(what, timeout, func(s agent.Status) bool { return r.converged(s, commit, want) })
	r.check(what, want)
	return s
}

// check fails the test with what differs between the host and want.
func (r *rig) check(what string, want site) {
	r.t.Helper()
	if problems := r.hc.Settle(r.want(want)); len(problems) > 0 {
		r.t.Errorf("%s: the host differs from what it should run:\n- %s", what, strings.Join(problems, "\n- "))
	}
}

// taskPIDs returns the pid of each container's task (0 for none) by
// container id, read from containerd: a container restarted or made again
// shows as a new pid.
func (r *rig) taskPIDs() map[string]uint32 {
	r.t.Helper()
	out := map[string]uint32{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := r.hc.CD.Containers(ctx)
	if err != nil {
		r.t.Fatalf("list containers: %v", err)
	}
	for _, c := range cs {
		task, err := c.Task(ctx, nil)
		if err != nil {
			out[c.ID()] = 0
			continue
		}
		out[c.ID()] = task.Pid()
	}
	return out
}

// parallel runs the test beside the suite's other parallel tests, after
// the serial ones (the cluster's, whose failure detection wants the
// machine to itself), unless KELPIE_FAULTS_SERIAL is set: one test's
// faults never reach another's host (each has its own pod subnet,
// containerd namespace, state dir, repository and ports), and most of a
// test is waiting.
func parallel(t *testing.T) {
	if os.Getenv("KELPIE_FAULTS_SERIAL") == "" {
		t.Parallel()
	}
}

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

// waitGroupGone waits until no process of the process group pgid is left.
func waitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			t.Logf("processes of the killed agent's group %d still run after 20s", pgid)
			return
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
