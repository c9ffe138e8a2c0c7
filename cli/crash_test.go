package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
)

// crashIterations is the number of kill points after the cold one;
// KELPIE_CRASH_ITERATIONS overrides it, KELPIE_CRASH_SEED fixes the seed.
const crashIterations = 20

// TestApplyCrashLoop is the SIGKILL crash loop: `kelpie apply --prune` runs
// as a separate process converging the host toward one of two states, is
// SIGKILLed at a random moment, and runs again until it converges (up to
// 3 times). After every round the host must run exactly the desired pods,
// serving, with nothing left over anywhere kelpie writes: containerd
// (containers, shims, snapshots, leases), the state dir (network
// namespaces, sandbox records, pod dirs, host-local leases), the mount
// table, iptables, the bridge's ports and the cgroup hierarchies. The kill
// points are fractions of a full apply's duration drawn from a seeded
// generator: the seed and each kill point are logged.
func TestApplyCrashLoop(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("KELPIE_CRASH_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("KELPIE_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	iterations := crashIterations
	if s := os.Getenv("KELPIE_CRASH_ITERATIONS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("KELPIE_CRASH_ITERATIONS=%q: want a positive integer", s)
		}
		iterations = v
	}
	t.Logf("seed %d (rerun with KELPIE_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6b656c706965))

	addr := testenv.ContainerdAddress(t)
	bin := nethost.BuildKelpie(t)
	start := time.Now()

	// The probe host measures how long full applies take, without kills,
	// and shows the checks hold on a host that never crashed.
	probe, probeCheck := newPrivateHost(t, addr, "crp")
	pr := &crashRunner{t: t, bin: bin, h: probe, hc: probeCheck, reported: map[string]bool{}}
	a, b := crashTargets(fmt.Sprintf("crashprobe-%d", probeCheck.Octet), probeCheck.HostPort)
	coldDur := pr.full(a)
	pr.check(a, "probe: cold apply of A")
	abDur := pr.full(b)
	pr.check(b, "probe: apply of B")
	baDur := pr.full(a)
	pr.check(a, "probe: apply of A")
	pr.destroy()
	full := max(abDur, baDur)
	t.Logf("full applies without kills: cold A %v, A→B %v, B→A %v", coldDur.Round(time.Millisecond), abDur.Round(time.Millisecond), baDur.Round(time.Millisecond))

	h, hc := newPrivateHost(t, addr, "crt")
	cr := &crashRunner{t: t, bin: bin, h: h, hc: hc, reported: map[string]bool{}}
	a, b = crashTargets(fmt.Sprintf("crashtest-%d", hc.Octet), hc.HostPort)
	targets := []crashTarget{a, b}
	for i := 0; i <= iterations; i++ {
		target, bound := targets[i%2], full
		if i == 0 {
			bound = coldDur // from nothing: image import included
		}
		// A fraction, not a duration, comes from the seed, so that a seed
		// gives the same kill points on a faster or slower machine.
		delay := time.Duration(rng.Float64() * float64(bound))
		cr.round(i, target, delay, bound)
	}
	t.Logf("%d kill points in %v", iterations+1, time.Since(start).Round(time.Second))
}

// crashTarget is one desired state of the crash loop and what a host
// converged to it runs.
type crashTarget struct {
	name     string
	text     string
	want     nethost.Want
	content  string   // the page the web pods serve
	web, api []string // pod names
	edge     bool     // whether the hostPort pod runs
}

// crashTargets returns the two states of the crash loop in namespace ns:
// A runs 6 pods (web×3 with an emptyDir and a ConfigMap volume, each also
// mounted by subPath, api×1 of two containers with a Secret volume, edge
// with a hostPort, store with a claim); B changes the ConfigMap (web pods are replaced), scales web to 2
// and api to 2, and drops edge (pruned).
func crashTargets(ns string, hostPort int) (a, b crashTarget) {
	a = crashTarget{name: "A", content: "crash state A", web: []string{"web-0", "web-1", "web-2"}, api: []string{"api-0"}, edge: true}
	b = crashTarget{name: "B", content: "crash state B", web: []string{"web-0", "web-1"}, api: []string{"api-0", "api-1"}}
	for _, c := range []*crashTarget{&a, &b} {
		c.text = crashManifest(ns, c.content, len(c.web), len(c.api), c.edge, hostPort)
		c.want = nethost.Want{Pods: map[string]nethost.WantPod{}}
		for _, n := range c.web {
			c.want.Pods[ns+"/"+n] = nethost.WantPod{Containers: []string{"httpd"}, SubPaths: []string{"content/httpd/2", "cache/httpd/3"}}
		}
		for _, n := range c.api {
			c.want.Pods[ns+"/"+n] = nethost.WantPod{Containers: []string{"httpd", "sidecar"}, Tmpfs: []string{"token"}}
		}
		if c.edge {
			c.want.Pods[ns+"/edge"] = nethost.WantPod{Containers: []string{"httpd"}}
		}
		c.want.Pods[ns+"/store"] = nethost.WantPod{Containers: []string{"main"}}
	}
	return a, b
}

// crashManifest writes the manifests of one state of the crash loop.
func crashManifest(ns, content string, web, api int, edge bool, hostPort int) string {
	var s strings.Builder
	fmt.Fprintf(&s, `apiVersion: v1
kind: ConfigMap
metadata: {name: web-content, namespace: %[1]s}
data:
  index.html: "%[2]s\n"
---
apiVersion: v1
kind: Secret
metadata: {name: api-token, namespace: %[1]s}
stringData:
  token: crash-loop-token
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: store-data, namespace: %[1]s}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: %[3]d
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0}}  # in place: the probes check the pods' names
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: nginx:1.7.9
        command: ["sh", "-c", "set -e; cmp /etc/web.html /www/index.html; hostname > /sub/host; hostname > /cache/host; exec httpd -f -p 80 -h /www"]
        ports: [{containerPort: 80}]
        volumeMounts:
        - {name: content, mountPath: /www, readOnly: true}
        - {name: cache, mountPath: /cache}
        - {name: content, mountPath: /etc/web.html, subPath: index.html}
        - {name: cache, mountPath: /sub, subPath: made/by/kelpie}
      volumes:
      - name: content
        configMap: {name: web-content}
      - name: cache
        emptyDir: {}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: %[1]s}
spec:
  replicas: %[4]d
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: nginx:1.7.9
      - name: sidecar
        image: busybox:1.36
        command: ["sh", "-c", "test -s /token/token && exec sleep 3600"]
        volumeMounts: [{name: token, mountPath: /token, readOnly: true}]
      volumes:
      - name: token
        secret: {secretName: api-token}
---
apiVersion: v1
kind: Pod
metadata: {name: store, namespace: %[1]s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "date >> /data/boots; exec sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: store-data}
`, ns, content, web, api)
	if edge {
		fmt.Fprintf(&s, `---
apiVersion: v1
kind: Pod
metadata: {name: edge, namespace: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: nginx:1.7.9
    ports: [{containerPort: 80, hostPort: %d}]
`, ns, hostPort)
	}
	return s.String()
}

// crashRunner runs the kelpie binary against one host.
type crashRunner struct {
	t   *testing.T
	bin string
	h   *hostEnv
	hc  *nethost.Host
	// reported holds the problems reported so far: a leak is reported once,
	// after the kill point that made it, and the loop goes on.
	reported map[string]bool
}

// applyArgs are the arguments of `kelpie apply --prune` on the host.
func (r *crashRunner) applyArgs() []string {
	return append([]string{"apply", "-f", r.h.manifest, "--prune", "--node-name", "test-host"}, r.h.flags...)
}

// command returns the apply command, in a process group of its own so that
// the CNI plugins it runs can be waited for after it is killed.
func (r *crashRunner) command(out io.Writer) *exec.Cmd {
	cmd := exec.Command(r.bin, r.applyArgs()...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// full writes target and applies it to completion, failing the test unless
// the first apply converges, and returns how long it took.
func (r *crashRunner) full(target crashTarget) time.Duration {
	r.t.Helper()
	r.h.write(target.text)
	var out bytes.Buffer
	begin := time.Now()
	err := r.command(&out).Run()
	took := time.Since(begin)
	if err != nil {
		r.t.Fatalf("apply of %s: %v\n%s", target.name, err, out.String())
	}
	return took
}

// round is one kill point: apply target, SIGKILL the apply after delay, run
// it again until it converges, and check the host.
func (r *crashRunner) round(i int, target crashTarget, delay, bound time.Duration) {
	t := r.t
	t.Helper()
	began := time.Now()
	r.h.write(target.text)
	var out bytes.Buffer
	cmd := r.command(&out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(delay)
	var point string
	select {
	case err := <-done:
		timer.Stop()
		point = fmt.Sprintf("exited before the kill (%v)", crashExitText(err))
	case <-timer.C:
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatalf("kill %d: %v", pid, err)
		}
		err := <-done
		point = "SIGKILLed (" + crashExitText(err) + ")"
	}
	crashWaitGroupGone(t, pid)
	doneActions := crashActionLines(out.String())
	killPoint := fmt.Sprintf("kill point %d: target %s, delay %v of [0, %v], %s after %d completed action(s)",
		i, target.name, delay.Round(time.Millisecond), bound.Round(time.Millisecond), point, len(doneActions))
	if len(doneActions) > 0 {
		killPoint += ": " + strings.Join(doneActions, "; ")
	}
	t.Log(killPoint)

	var outputs []string
	converged := false
	// Up to 3 runs, a pause before each retry as a supervisor restarting a
	// failed kelpie would make; a retry is logged, a third failure is fatal.
	for attempt := 1; attempt <= 3 && !converged; attempt++ {
		if attempt > 1 {
			time.Sleep(time.Duration(attempt) * time.Second)
		}
		var out bytes.Buffer
		err := r.command(&out).Run()
		outputs = append(outputs, fmt.Sprintf("attempt %d at +%v: %s\n%s", attempt, time.Since(began).Round(time.Millisecond), crashExitText(err), out.String()))
		converged = err == nil
		if err != nil {
			t.Logf("NOTE after %s\napply attempt %d did not converge: %v\n%s", killPoint, attempt, err, out.String())
		}
	}
	if !converged {
		t.Fatalf("after %s\napply did not converge in 3 attempts:\n%s", killPoint, strings.Join(outputs, "\n"))
	}
	r.check(target, killPoint)
	t.Logf("kill point %d: converged in %d attempt(s) and checked; the round took %v", i, len(outputs), time.Since(began).Round(time.Millisecond))
}

// check asserts the host is converged to target: plan --prune is empty,
// nothing leaked, every pod runs and serves. Problems not reported before
// fail the test; the loop goes on, so one leak does not hide the others.
func (r *crashRunner) check(target crashTarget, when string) {
	t := r.t
	t.Helper()
	var problems []string
	if res := r.h.run("plan", "--prune"); res.code != 0 {
		problems = append(problems, fmt.Sprintf("plan --prune: exit %d (want 0, nothing to do):\n%s%s", res.code, res.stdout, res.stderr))
	}
	problems = append(problems, r.hc.Settle(target.want)...)
	problems = append(problems, r.serving(target)...)
	var fresh []string
	for _, p := range problems {
		if !r.reported[p] {
			r.reported[p] = true
			fresh = append(fresh, p)
		}
	}
	if len(fresh) > 0 {
		t.Errorf("after %s:\n- %s", when, strings.Join(fresh, "\n- "))
	}
}

// serving checks the pods answer: web pods serve the ConfigMap of target,
// api pods the nginx page, and the hostPort answers on the bridge's address
// exactly while edge runs.
func (r *crashRunner) serving(target crashTarget) []string {
	var problems []string
	ips := map[string]string{}
	for _, p := range r.h.pods() {
		ips[p.Name] = p.IP
		for _, c := range p.Containers {
			if c.State != "Running" {
				problems = append(problems, fmt.Sprintf("pod %s container %s is %s", p.Name, c.Name, c.State))
			}
		}
	}
	page := func(name, url, want string) {
		body, err := nethost.Get(url, 10*time.Second)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: GET %s: %v", name, url, err))
		case !strings.Contains(body, want):
			problems = append(problems, fmt.Sprintf("%s: GET %s served %q, want %q", name, url, body, want))
		}
	}
	for _, n := range target.web {
		page(n, "http://"+ips[n]+"/", target.content)
	}
	for _, n := range target.api {
		page(n, "http://"+ips[n]+"/", "Welcome to nginx!")
	}
	hostPort := fmt.Sprintf("http://%s/", net.JoinHostPort(r.hc.Gateway, strconv.Itoa(r.hc.HostPort)))
	if target.edge {
		page("edge hostPort", hostPort, "Welcome to nginx!")
	} else if body, err := nethost.Get(hostPort, 0); err == nil {
		problems = append(problems, fmt.Sprintf("GET %s answered %q after edge was removed: a port mapping leaked", hostPort, body))
	}
	if _, err := os.Stat(filepath.Join(r.hc.StateDir, "volumes", nethost.StateName(r.nsOf(target), "store-data"), "data", "boots")); err != nil {
		problems = append(problems, fmt.Sprintf("store's claim: %v", err))
	}
	return problems
}

// nsOf returns the namespace of target's pods.
func (r *crashRunner) nsOf(target crashTarget) string {
	for key := range target.want.Pods {
		ns, _, _ := strings.Cut(key, "/")
		return ns
	}
	return ""
}

// destroy removes every pod of the host now and checks nothing is left.
func (r *crashRunner) destroy() {
	r.t.Helper()
	r.hc.Destroy()
}

// crashExitText describes how a process ended.
func crashExitText(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit 0"
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal " + ws.Signal().String()
		}
		return fmt.Sprintf("exit %d", ee.ExitCode())
	default:
		return err.Error()
	}
}

// crashActionLines returns the actions a (killed) apply reported done.
func crashActionLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasSuffix(l, "s]") || strings.HasPrefix(l, "✗") {
			lines = append(lines, l)
		}
	}
	return lines
}

// crashWaitGroupGone waits until no process of the process group pgid is left:
// the CNI plugins a killed apply was running finish on their own, as they
// would when kelpie crashed for real.
func crashWaitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			t.Logf("processes of the killed apply's group %d still run after 20s", pgid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
