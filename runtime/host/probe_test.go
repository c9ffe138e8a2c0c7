package host

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/defaults"

	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// runPod creates p and waits until Observe reports its containers running.
func (tr *testRuntime) runPod(t *testing.T, p reconciler.Pod) reconciler.ActualPod {
	t.Helper()
	if err := tr.CreatePod(tr.ctx(t), p); err != nil {
		t.Fatalf("CreatePod %s: %v", p.Name, err)
	}
	var a reconciler.ActualPod
	waitFor(t, p.Name+" running", 30*time.Second, func() (bool, string) {
		a, _ = tr.observePod(t, p.Namespace, p.Name)
		for _, c := range p.Containers {
			if ac, ok := containerOf(a, c.Name); !ok || ac.State != reconciler.Running {
				return false, c.Name + " " + string(ac.State)
			}
		}
		return true, ""
	})
	return a
}

// pidsOf returns the processes of a container's task.
func (tr *testRuntime) pidsOf(t *testing.T, cont containerd.Container) []uint32 {
	t.Helper()
	task, err := cont.Task(tr.ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := task.Pids(tr.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, p := range ps {
		out = append(out, p.Pid)
	}
	slices.Sort(out)
	return out
}

// probeFIFOs lists the FIFOs of exec probes (named probe-ID-stdout and so
// on, in a directory of their own under containerd's client FIFO dir) made
// since start: each is removed once its process is deleted.
func probeFIFOs(t *testing.T, since time.Time) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(defaults.DefaultFIFODir, "*", "probe-*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		if fi, err := os.Lstat(p); err == nil && !fi.ModTime().Before(since.Add(-time.Second)) {
			out = append(out, p)
		}
	}
	return out
}

func TestExecProbe(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("probe-exec", "")
	p.HostNetwork = true
	p.Containers[0].Command = []string{"sleep", "1000"}
	uid := int64(1234)
	p.Containers[0].Security.RunAsUser = &uid
	p.Containers[0].WorkingDir = "/tmp"
	p.Containers[0].Env = []reconciler.EnvVar{{Name: "FOO", Value: "bar"}}
	a := tr.runPod(t, p)
	cont := tr.load(t, p.Namespace, p.Name, "main")
	task, err := cont.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	init := []uint32{task.Pid()}
	testStart := time.Now()

	for _, tc := range []struct {
		name    string
		cmd     []string
		timeout time.Duration
		ok      bool
		output  string
		prefix  bool // output is only the start of what Probe says
		within  time.Duration
	}{
		{name: "success", cmd: []string{"true"}, ok: true, output: "exit 0"},
		{name: "success with output", cmd: []string{"sh", "-c", "echo hello; echo second"}, ok: true, output: "exit 0: hello"},
		{name: "failure", cmd: []string{"sh", "-c", "echo bad >&2; exit 3"}, output: "exit 3: bad"},
		{name: "the container's process settings", cmd: []string{"sh", "-c", `echo "$(id -u) $PWD $FOO"`}, ok: true, output: "exit 0: 1234 /tmp bar"},
		{name: "much output", cmd: []string{"sh", "-c", `head -c 1000000 /dev/zero | tr "\\0" x; exit 1`}, output: "exit 1: " + strings.Repeat("x", 128) + "…"},
		{name: "no such command", cmd: []string{"nope"}, output: `exec failed: "nope": executable file not found`, prefix: true},
		{name: "timeout", cmd: []string{"sleep", "5"}, timeout: time.Second, output: "timeout after 1s", within: 4 * time.Second},
		{name: "timeout of a shell's child", cmd: []string{"sh", "-c", "sleep 5; sleep 6; echo done"}, timeout: 500 * time.Millisecond, output: "timeout after 500ms", within: 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			ok, output := tr.Probe(ctx, a, "main", reconciler.Probe{Exec: tc.cmd, Timeout: tc.timeout})
			took := time.Since(start)
			if ok != tc.ok || output != tc.output && !(tc.prefix && strings.HasPrefix(output, tc.output)) {
				t.Errorf("Probe = %v, %q; want %v, %q", ok, output, tc.ok, tc.output)
			}
			if tc.within > 0 && took > tc.within {
				t.Errorf("Probe took %s, want at most %s", took, tc.within)
			}
			// No exec process is left, nor anything it started, and the
			// exec process is deleted (with its FIFOs, which the client
			// removes once containerd has deleted the process).
			if got := tr.pidsOf(t, cont); !slices.Equal(got, init) {
				t.Errorf("processes of the container after the probe: %v, want only %v", got, init)
			}
			if left := probeFIFOs(t, testStart); len(left) > 0 {
				t.Errorf("FIFOs of exec probes left: %v", left)
			}
		})
	}

	t.Run("background process holding the output", func(t *testing.T) {
		start := time.Now()
		ok, output := tr.Probe(ctx, a, "main", reconciler.Probe{Exec: []string{"sh", "-c", "echo started; sleep 100 &"}, Timeout: time.Second})
		if !ok || output != "exit 0: started" {
			t.Errorf("Probe = %v, %q; want true, %q", ok, output, "exit 0: started")
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("Probe took %s, want its timeout (1s) at most, and a little", took)
		}
		// Its exec process goes in the background.
		waitFor(t, "the exec process to be deleted", 10*time.Second, func() (bool, string) {
			left := probeFIFOs(t, testStart)
			return len(left) == 0, strings.Join(left, ", ")
		})
	})
	t.Run("canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(300*time.Millisecond, cancel)
		ok, output := tr.Probe(cctx, a, "main", reconciler.Probe{Exec: []string{"sleep", "5"}, Timeout: 10 * time.Second})
		if ok || output != "canceled" {
			t.Errorf("Probe = %v, %q; want false, canceled", ok, output)
		}
	})
	t.Run("no such container", func(t *testing.T) {
		ok, output := tr.Probe(ctx, a, "other", reconciler.Probe{Exec: []string{"true"}})
		if ok || output != "container not found" {
			t.Errorf("Probe = %v, %q; want false, container not found", ok, output)
		}
	})

	// Execs left nothing of theirs in the task (checked by containerd: the
	// pids above are the task's, each exec's would be listed).
	ended := busyboxPod("probe-ended", "exit 0")
	ended.HostNetwork = true
	if err := tr.CreatePod(ctx, ended); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ended pod's container to exit", 30*time.Second, func() (bool, string) {
		e, _ := tr.observePod(t, ended.Namespace, ended.Name)
		c, _ := containerOf(e, "main")
		return c.State == reconciler.Exited, string(c.State)
	})
	e, _ := tr.observePod(t, ended.Namespace, ended.Name)
	if ok, output := tr.Probe(ctx, e, "main", reconciler.Probe{Exec: []string{"true"}}); ok || output != "container not running" {
		t.Errorf("Probe of an exited container = %v, %q; want false, container not running", ok, output)
	}
}

// freeLoopbackPort returns a TCP port nothing listens on at 127.0.0.1.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestNetworkProbes(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)

	// A pod on the CNI bridge serving HTTP on port 80 (the nginx test image).
	web := busyboxPod("probe-web", "")
	web.Containers[0].Image = testimage.NginxRef
	web.Containers[0].Command = nil
	a := tr.runPod(t, web)
	if a.IP == "" {
		t.Fatalf("the pod has no IP: %+v", a)
	}
	waitFor(t, "httpd to listen", 10*time.Second, func() (bool, string) {
		ok, out := tr.Probe(ctx, a, "main", reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: 80}})
		return ok, out
	})

	// A pod in the host's network serving HTTP on a loopback port.
	port := freeLoopbackPort(t)
	hostWeb := busyboxPod("probe-hostweb", "")
	hostWeb.HostNetwork = true
	hostWeb.Containers[0].Command = testimage.ExitOnTerm("httpd", "-f", "-p", "127.0.0.1:"+itoa(port), "-h", "/")
	ha := tr.runPod(t, hostWeb)
	if ha.IP != "" {
		t.Fatalf("a host network pod has an IP: %+v", ha)
	}
	waitFor(t, "the host network httpd to listen", 10*time.Second, func() (bool, string) {
		ok, out := tr.Probe(ctx, ha, "main", reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: port}})
		return ok, out
	})

	for _, tc := range []struct {
		name   string
		pod    reconciler.ActualPod
		probe  reconciler.Probe
		ok     bool
		output string
	}{
		{"http", a, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Path: "/", Port: 80}}, true, "HTTP 200"},
		{"http 404", a, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Path: "/missing", Port: 80}}, false, "HTTP 404"},
		{"http to the pod's IP named", a, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Path: "/", Port: 80, Host: a.IP}}, true, "HTTP 200"},
		{"http to another host", a, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Path: "/", Port: 80, Host: "127.0.0.1"}}, false, "host 127.0.0.1 not allowed"},
		{"http refused", a, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Path: "/", Port: 81}}, false, "connection refused"},
		{"tcp", a, reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: 80}}, true, "connected"},
		{"tcp refused", a, reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: 9999}}, false, "connection refused"},
		{"tcp to another host", a, reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: 80, Host: "10.1.2.3"}}, false, "host 10.1.2.3 not allowed"},
		{"exec beside", a, reconciler.Probe{Exec: []string{"wget", "-q", "-O", "-", "http://127.0.0.1/"}}, true, "exit 0: <!DOCTYPE html>"},
		{"host network http", ha, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Path: "/", Port: port}}, false, "HTTP 404"},
		{"host network http to /bin/", ha, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Path: "/bin/sh", Port: port}}, true, "HTTP 200"},
		{"host network tcp", ha, reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: port}}, true, "connected"},
		{"host network elsewhere", ha, reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: port, Host: "192.0.2.1"}}, false, "host 192.0.2.1 not allowed"},
		{"no such container", a, reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: 80}}, false, "container not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			container := "main"
			if tc.name == "no such container" {
				container = "other"
			}
			ok, output := tr.Probe(ctx, tc.pod, container, tc.probe)
			if ok != tc.ok || output != tc.output {
				t.Errorf("Probe = %v, %q; want %v, %q", ok, output, tc.ok, tc.output)
			}
		})
	}
}

func TestKillContainer(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)

	// busybox sleep as PID 1 ignores SIGTERM: SIGKILL after the grace period.
	stubborn := busyboxPod("kill-stubborn", "")
	stubborn.HostNetwork = true
	stubborn.Containers[0].Command = []string{"sleep", "1000"}
	// httpd under the ExitOnTerm wrapper exits 0 at once on SIGTERM.
	polite := busyboxPod("kill-polite", "")
	polite.HostNetwork = true
	polite.Containers[0].Command = testimage.ExitOnTerm("httpd", "-f", "-p", "127.0.0.1:"+itoa(freeLoopbackPort(t)), "-h", "/")
	tr.runPod(t, stubborn)
	tr.runPod(t, polite)

	exited := func(p reconciler.Pod) reconciler.ActualContainer {
		t.Helper()
		a, ok := tr.observePod(t, p.Namespace, p.Name)
		if !ok {
			t.Fatalf("pod %s is gone", p.Name)
		}
		c, ok := containerOf(a, "main")
		if !ok || c.State != reconciler.Exited {
			t.Fatalf("container of %s: %+v, want it to exist, exited", p.Name, c)
		}
		return c
	}

	start := time.Now()
	if err := tr.KillContainer(ctx, stubborn.Namespace, stubborn.Name, "main", time.Second); err != nil {
		t.Fatalf("KillContainer: %v", err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("a container ignoring SIGTERM was killed after %s, before its grace", took)
	}
	if c := exited(stubborn); c.ExitCode != 137 {
		t.Errorf("exit code %d after SIGKILL, want 137", c.ExitCode)
	}

	// The polite one traps SIGTERM once its shell runs: wait for that.
	pid := taskPids(t, tr, tr.load(t, polite.Namespace, polite.Name, "main"))
	waitFor(t, "the wrapper to trap SIGTERM", 10*time.Second, func() (bool, string) {
		return catches(pid, 15), "not yet"
	})
	start = time.Now()
	if err := tr.KillContainer(ctx, polite.Namespace, polite.Name, "main", time.Minute); err != nil {
		t.Fatalf("KillContainer: %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("a container exiting on SIGTERM took %s to stop", took)
	}
	if c := exited(polite); c.ExitCode != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0 (the wrapper's)", c.ExitCode)
	}

	// Killing what does not run succeeds and changes nothing.
	if err := tr.KillContainer(ctx, stubborn.Namespace, stubborn.Name, "main", time.Second); err != nil {
		t.Errorf("KillContainer of an exited container: %v", err)
	}
	if err := tr.KillContainer(ctx, stubborn.Namespace, stubborn.Name, "nope", time.Second); err != nil {
		t.Errorf("KillContainer of a container that does not exist: %v", err)
	}
	if c := exited(stubborn); c.ExitCode != 137 {
		t.Errorf("exit code %d after a second kill, want still 137", c.ExitCode)
	}

	// The restart policy's restart brings it back, counted.
	if err := tr.RestartContainer(ctx, stubborn, "main"); err != nil {
		t.Fatalf("RestartContainer: %v", err)
	}
	a, _ := tr.observePod(t, stubborn.Namespace, stubborn.Name)
	if c, _ := containerOf(a, "main"); c.State != reconciler.Running || c.Restarts != 1 {
		t.Errorf("after the restart: %+v, want running with 1 restart", c)
	}

	// No grace: SIGKILL at once.
	start = time.Now()
	if err := tr.KillContainer(ctx, stubborn.Namespace, stubborn.Name, "main", 0); err != nil {
		t.Fatalf("KillContainer: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a kill without grace took %s", took)
	}
	if c := exited(stubborn); c.ExitCode != 137 {
		t.Errorf("exit code %d after SIGKILL, want 137", c.ExitCode)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
