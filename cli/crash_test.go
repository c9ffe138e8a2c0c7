package cli

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/snapshots"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/image-spec/identity"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/image"
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
	bin := buildKelpie(t)
	start := time.Now()

	// The probe host measures how long full applies take, without kills,
	// and shows the checks hold on a host that never crashed.
	probe, probeCheck := newPrivateHost(t, addr, "crp")
	pr := &crashRunner{t: t, bin: bin, h: probe, hc: probeCheck, reported: map[string]bool{}}
	a, b := crashTargets(fmt.Sprintf("crashprobe-%d", probeCheck.octet), probeCheck.hostPort)
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
	a, b = crashTargets(fmt.Sprintf("crashtest-%d", hc.octet), hc.hostPort)
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
	want     wantHost
	content  string   // the page the web pods serve
	web, api []string // pod names
	edge     bool     // whether the hostPort pod runs
}

// crashTargets returns the two states of the crash loop in namespace ns:
// A runs 6 pods (web×3 with an emptyDir and a ConfigMap volume, api×1 of two
// containers with a Secret volume, edge with a hostPort, store with a
// claim); B changes the ConfigMap (web pods are replaced), scales web to 2
// and api to 2, and drops edge (pruned).
func crashTargets(ns string, hostPort int) (a, b crashTarget) {
	a = crashTarget{name: "A", content: "crash state A", web: []string{"web-0", "web-1", "web-2"}, api: []string{"api-0"}, edge: true}
	b = crashTarget{name: "B", content: "crash state B", web: []string{"web-0", "web-1"}, api: []string{"api-0", "api-1"}}
	for _, c := range []*crashTarget{&a, &b} {
		c.text = crashManifest(ns, c.content, len(c.web), len(c.api), c.edge, hostPort)
		c.want = wantHost{pods: map[string]wantPod{}}
		for _, n := range c.web {
			c.want.pods[ns+"/"+n] = wantPod{containers: []string{"httpd"}}
		}
		for _, n := range c.api {
			c.want.pods[ns+"/"+n] = wantPod{containers: []string{"httpd", "sidecar"}, tmpfs: []string{"token"}}
		}
		if c.edge {
			c.want.pods[ns+"/edge"] = wantPod{containers: []string{"httpd"}}
		}
		c.want.pods[ns+"/store"] = wantPod{containers: []string{"main"}}
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
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: nginx:1.7.9
        command: ["sh", "-c", "hostname > /cache/host; exec httpd -f -p 80 -h /www"]
        ports: [{containerPort: 80}]
        volumeMounts:
        - {name: content, mountPath: /www, readOnly: true}
        - {name: cache, mountPath: /cache}
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
	hc  *hostCheck
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
	problems = append(problems, r.hc.settle(target.want)...)
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
		body, err := crashGet(url, 10*time.Second)
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
	hostPort := fmt.Sprintf("http://%s/", net.JoinHostPort(r.hc.gateway, strconv.Itoa(r.hc.hostPort)))
	if target.edge {
		page("edge hostPort", hostPort, "Welcome to nginx!")
	} else if body, err := crashGet(hostPort, 0); err == nil {
		problems = append(problems, fmt.Sprintf("GET %s answered %q after edge was removed: a port mapping leaked", hostPort, body))
	}
	if _, err := os.Stat(filepath.Join(r.hc.stateDir, "volumes", crashStateName(r.nsOf(target), "store-data"), "data", "boots")); err != nil {
		problems = append(problems, fmt.Sprintf("store's claim: %v", err))
	}
	return problems
}

// nsOf returns the namespace of target's pods.
func (r *crashRunner) nsOf(target crashTarget) string {
	for key := range target.want.pods {
		ns, _, _ := strings.Cut(key, "/")
		return ns
	}
	return ""
}

// destroy removes every pod of the host now and checks nothing is left.
func (r *crashRunner) destroy() {
	r.t.Helper()
	r.hc.destroy()
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

// crashGet GETs url, retrying until it answers or wait has passed.
func crashGet(url string, wait time.Duration) (string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(wait)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil {
				return string(body), nil
			}
			err = rerr
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildKelpie builds the kelpie binary into a temporary directory.
func buildKelpie(t *testing.T) string {
	t.Helper()
	goBin := testenv.Binary(t, "go", "golang-go")
	bin := filepath.Join(t.TempDir(), "kelpie")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/kelpie-dev/kelpie/cmd/kelpie").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// crashStateName is a pod's or claim's name in the state dir: "namespace_name".
func crashStateName(namespace, name string) string { return namespace + "_" + name }

// Pod subnets of the private hosts: 10.248.10.0/24 … 10.248.19.0/24, one
// host each at a time, claimed with a lock file shared by every test
// process on the machine (other sessions run these tests too).
const (
	privateSubnetFirst = 10
	privateSubnetLast  = 19
)

// privateBridge matches the bridges newPrivateHost names: "k", a tag, the
// subnet's third octet.
var privateBridge = regexp.MustCompile(`^k(crp|crt|site|hp)[0-9]+$`)

// newPrivateHost is newHostEnv for a test that needs hosts of its own,
// several in one process, on the containerd at addr (read it with
// testenv.ContainerdAddress before the first host clears KELPIE_*). It
// claims a free pod subnet of 10.248.10.0/24 … 10.248.19.0/24; tag
// (crp, crt, site or hp) and the subnet's third octet N name its bridge
// ("k" tag N) and, with the process id and a random suffix, its containerd
// namespace; its hostPort is 18080+N. Callers put N in their Kubernetes
// namespaces, since the CNI plugins name iptables chains after
// "namespace_pod". When the test ends every pod is removed through `kelpie
// apply --prune --allow-empty`, the host is checked empty, what kelpie
// could not remove is reaped, and the bridge is deleted.
func newPrivateHost(t *testing.T, addr, tag string) (*hostEnv, *hostCheck) {
	t.Helper()
	testenv.Root(t)
	testenv.Binary(t, "iptables", "iptables")
	testenv.Binary(t, "ip", "iproute2")
	clearEnv(t)
	pfx, octet, lock := claimSubnet(t, tag)
	t.Cleanup(func() { lock.Close() })
	bridge := fmt.Sprintf("k%s%d", tag, octet)
	ns := fmt.Sprintf("kelpie-%s%d-%d-%04x", tag, octet, os.Getpid(), rand.N(0x10000))

	images := t.TempDir()
	if err := testimage.WriteLayout(images, testimage.Standard()...); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	realState, err := filepath.EvalSymlinks(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	h := &hostEnv{t: t, manifest: t.TempDir(), flags: []string{
		"--containerd-address", addr,
		"--containerd-namespace", ns,
		"--state-dir", stateDir,
		"--pod-subnet", pfx.String(),
		"--bridge", bridge,
		"--image-dir", images,
	}}
	cd, err := containerd.New(addr, containerd.WithDefaultNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	hc := &hostCheck{
		t: t, h: h, cd: cd, namespace: ns, stateDir: realState, bridge: bridge,
		octet:    octet,
		gateway:  pfx.Addr().Next().String(),
		hostPort: 18080 + octet,
		seen:     map[string]bool{},
	}
	t.Logf("host %s: pod subnet %s, bridge %s, containerd namespace %s", tag, pfx, bridge, ns)
	t.Cleanup(func() {
		defer cd.Close()
		if !hc.destroyed {
			hc.destroy()
		}
		hc.reap()
		hc.removeNamespace()
		if out, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			t.Logf("ip link del %s: %v: %s", bridge, err, out)
		}
	})
	return h, hc
}

// claimSubnet locks a free subnet of the private range for the test and
// returns it, its third octet and the lock, which closing releases (as the
// process's end does). A subnet is free when its lock is and no interface
// but a stale bridge of these tests holds an address in it; such a bridge,
// left by a run that ended without its cleanup, is deleted when it has no
// ports, since a second bridge with the subnet would take the route to the
// pods.
func claimSubnet(t *testing.T, tag string) (netip.Prefix, int, *os.File) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		for octet := privateSubnetFirst; octet <= privateSubnetLast; octet++ {
			pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 248, byte(octet), 0}), 24)
			lock := privateTryLock(t, fmt.Sprintf("subnet-10.248.%d.0", octet))
			if lock == nil {
				continue
			}
			if holder := subnetHolder(t, pfx, fmt.Sprintf("k%s%d", tag, octet)); holder != "" {
				t.Logf("pod subnet %s is free of tests but %s holds an address in it; trying the next one", pfx, holder)
				lock.Close()
				continue
			}
			return pfx, octet, lock
		}
		if time.Now().After(deadline) {
			t.Fatalf("no free pod subnet in 10.248.%d.0/24 … 10.248.%d.0/24 for 3 minutes", privateSubnetFirst, privateSubnetLast)
		}
		time.Sleep(time.Second)
	}
}

// subnetHolder returns the interface other than bridge that holds an
// address of subnet, after deleting stale bridges of these tests; "" when
// none does.
func subnetHolder(t *testing.T, subnet netip.Prefix, bridge string) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		holds := false
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && subnet.Contains(p.Addr()) {
				holds = true
			}
		}
		if !holds || ifc.Name == bridge {
			continue
		}
		if privateBridge.MatchString(ifc.Name) && privateBridgePorts(ifc.Name) == 0 {
			t.Logf("deleting stale bridge %s of an earlier run (it holds %v)", ifc.Name, addrs)
			out, err := exec.Command("ip", "link", "del", ifc.Name).CombinedOutput()
			if err == nil {
				continue
			}
			t.Logf("ip link del %s: %v: %s", ifc.Name, err, out)
		}
		return ifc.Name
	}
	return ""
}

// privateTryLock takes the lock file name, shared by the test processes of this
// machine, without waiting; nil when another holds it.
func privateTryLock(t *testing.T, name string) *os.File {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "kelpie-cli-test-locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil
	}
	return f
}

// privateWaitLock takes the lock file name, waiting up to wait for it, and
// releases it when the test ends.
func privateWaitLock(t *testing.T, name string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if f := privateTryLock(t, name); f != nil {
			t.Cleanup(func() { f.Close() })
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s is held by another test process for %v", name, wait)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// wantHost is what a converged host runs.
type wantHost struct {
	// pods maps "namespace/name" to the pod.
	pods map[string]wantPod
	// networks maps a CNI network other than the default ("kelpie-net-NET")
	// to the pods ("namespace/name") holding a lease on it.
	networks map[string][]string
	// bridges maps a bridge other than the host's to its number of ports.
	bridges map[string]int
}

// wantPod is one pod of a wantHost.
type wantPod struct {
	containers []string
	tmpfs      []string // volumes mounted on the host: Secrets, Memory emptyDirs
}

// hostCheck inspects a private host from outside kelpie.
type hostCheck struct {
	t         *testing.T
	h         *hostEnv
	cd        *containerd.Client
	namespace string // containerd's
	stateDir  string // symlinks resolved
	bridge    string
	octet     int // the third octet of the pod subnet
	gateway   string
	hostPort  int
	seen      map[string]bool // every pod key a wantHost named
	destroyed bool
}

// destroy applies an empty manifest with --prune --allow-empty and checks
// the host is left empty.
func (hc *hostCheck) destroy() {
	t := hc.t
	t.Helper()
	hc.destroyed = true
	empty := t.TempDir()
	res := runMain(t, append([]string{"apply", "-f", empty, "--prune", "--allow-empty", "--node-name", "test-host"}, hc.h.flags...)...)
	if res.code != 0 {
		t.Errorf("empty apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if problems := hc.settle(wantHost{}); len(problems) > 0 {
		t.Errorf("after the empty apply the host is not empty:\n- %s", strings.Join(problems, "\n- "))
	}
}

// settle checks the host against want, again and again for a few seconds
// while anything differs (a namespace's veth goes some time after its last
// user, a shim reaps its task), and returns what still differs.
func (hc *hostCheck) settle(want wantHost) []string {
	deadline := time.Now().Add(10 * time.Second)
	var last string
	var since time.Time
	for {
		problems := hc.problems(want)
		if key := strings.Join(problems, "\n"); key != last {
			last, since = key, time.Now()
		}
		// Done when nothing differs, or the same things have differed
		// for 2s (a leak, not a lag), or time is up.
		if len(problems) == 0 || time.Since(since) > 2*time.Second || time.Now().After(deadline) {
			return problems
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// problems lists every way the host differs from want.
func (hc *hostCheck) problems(want wantHost) []string {
	for key := range want.pods {
		hc.seen[key] = true
	}
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	live := map[string]bool{} // "namespace_name" of the desired pods
	var wantContainers []string
	for key, wp := range want.pods {
		ns, name, _ := strings.Cut(key, "/")
		live[crashStateName(ns, name)] = true
		for _, c := range wp.containers {
			wantContainers = append(wantContainers, key+"/"+c)
		}
	}

	// containerd: one container per desired container, each running, each
	// on its own snapshot; no other snapshot than theirs and the images'
	// layers; no lease.
	recs, err := hc.cd.ContainerService().List(ctx)
	if err != nil {
		add("list containers: %v", err)
	}
	byName := map[string][]string{}
	snapKeys := map[string]string{}
	for _, r := range recs {
		k := r.Labels[reconciler.LabelPod] + "/" + r.Labels[reconciler.LabelContainer]
		byName[k] = append(byName[k], r.ID)
		snapKeys[r.SnapshotKey] = r.ID
	}
	if len(recs) != len(wantContainers) {
		add("%d containers in containerd namespace %s, want %d", len(recs), hc.namespace, len(wantContainers))
	}
	for _, k := range wantContainers {
		if len(byName[k]) == 0 {
			add("container %s is missing", k)
		}
	}
	for k, ids := range byName {
		if len(ids) > 1 {
			add("container %s is there %d times: %v", k, len(ids), ids)
		}
		if !slices.Contains(wantContainers, k) {
			add("container %s (%v) is not desired", k, ids)
		}
	}
	tasks, err := hc.cd.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		add("list tasks: %v", err)
	} else {
		running := map[string]bool{}
		for _, tk := range tasks.Tasks {
			running[tk.ID] = tk.Status == tasktypes.Status_RUNNING
		}
		for _, r := range recs {
			if !running[r.ID] {
				add("container %s has no running task", r.ID)
			}
		}
	}
	chains := map[string]bool{}
	imgs, err := hc.cd.ImageService().List(ctx)
	if err != nil {
		add("list images: %v", err)
	}
	for _, img := range imgs {
		diffIDs, err := containerd.NewImage(hc.cd, img).RootFS(ctx)
		if err != nil {
			add("image %s: %v", img.Name, err)
			continue
		}
		for _, c := range identity.ChainIDs(diffIDs) {
			chains[c.String()] = true
		}
	}
	var snaps []snapshots.Info
	err = hc.cd.SnapshotService(image.DefaultSnapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		snaps = append(snaps, info)
		return nil
	})
	if err != nil {
		add("walk snapshots: %v", err)
	}
	haveSnap := map[string]bool{}
	for _, s := range snaps {
		haveSnap[s.Name] = true
		switch {
		case s.Kind == snapshots.KindActive && snapKeys[s.Name] != "":
		case s.Kind == snapshots.KindCommitted && chains[s.Name]:
		default:
			add("orphan snapshot %s (%v, labels %v): no container or image uses it", s.Name, s.Kind, s.Labels)
		}
	}
	for key, id := range snapKeys {
		if !haveSnap[key] {
			add("container %s has no snapshot %s", id, key)
		}
	}
	lss, err := hc.cd.LeasesService().List(ctx)
	if err != nil {
		add("list leases: %v", err)
	}
	for _, l := range lss {
		var held []string
		rs, err := hc.cd.LeasesService().ListResources(ctx, l)
		if err != nil {
			held = append(held, err.Error())
		}
		for _, r := range rs {
			held = append(held, r.Type+" "+r.ID)
		}
		add("containerd lease %s left (created %v, labels %v) holding %d resource(s) %v", l.ID, l.CreatedAt.Format(time.TimeOnly), l.Labels, len(held), held)
	}

	// The state dir: one network namespace, sandbox record and pod dir per
	// pod; one host-local lease per pod and network.
	compareNames := func(what string, have []string, suffix string) {
		want := make([]string, 0, len(live))
		for k := range live {
			want = append(want, k+suffix)
		}
		if extra, missing := crashDiffSets(have, want); len(extra)+len(missing) > 0 {
			add("%s: %v left over, %v missing", what, extra, missing)
		}
	}
	compareNames("netns files", crashDirNames(filepath.Join(hc.stateDir, "netns")), "")
	compareNames("sandbox records", crashDirNames(filepath.Join(hc.stateDir, "sandboxes")), ".json")
	compareNames("pod dirs", crashDirNames(filepath.Join(hc.stateDir, "pods")), "")
	leaseDir := filepath.Join(hc.stateDir, "cni", "networks")
	for _, nw := range crashDirNames(leaseDir) {
		var owners []string
		for _, f := range crashDirNames(filepath.Join(leaseDir, nw)) {
			if f == "lock" || strings.HasPrefix(f, "last_reserved_ip") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(leaseDir, nw, f))
			if err != nil {
				add("lease %s/%s: %v", nw, f, err)
				continue
			}
			id, _, _ := strings.Cut(string(b), "\n")
			owners = append(owners, strings.TrimSpace(id))
		}
		var wantOwners []string
		if nw == "kelpie" {
			for k := range live {
				wantOwners = append(wantOwners, k)
			}
		} else {
			wantOwners = crashStateNames(want.networks[nw])
		}
		if extra, missing := crashDiffSets(owners, wantOwners); len(extra)+len(missing) > 0 {
			add("host-local leases of network %s: %v left over, %v missing", nw, extra, missing)
		}
	}
	for nw, pods := range want.networks {
		if len(pods) > 0 && len(crashDirNames(filepath.Join(leaseDir, nw))) == 0 {
			add("network %s has no leases, want %v", nw, pods)
		}
	}

	// Mounts under the state dir: only the pods' namespaces and tmpfs
	// volumes.
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(hc.stateDir))
	if err != nil {
		add("read mounts: %v", err)
	}
	var haveMounts, wantMounts []string
	for _, m := range mounts {
		haveMounts = append(haveMounts, strings.TrimPrefix(m.Mountpoint, hc.stateDir+"/")+" ("+m.FSType+")")
	}
	for key, wp := range want.pods {
		ns, name, _ := strings.Cut(key, "/")
		wantMounts = append(wantMounts, "netns/"+crashStateName(ns, name)+" (nsfs)")
		for _, v := range wp.tmpfs {
			wantMounts = append(wantMounts, "pods/"+crashStateName(ns, name)+"/volumes/"+v+" (tmpfs)")
		}
	}
	if extra, missing := crashDiffSets(haveMounts, wantMounts); len(extra)+len(missing) > 0 {
		add("mounts under the state dir: %v left over, %v missing", extra, missing)
	}

	// The host: one veth per pod on the bridge, iptables rules and chains
	// only for live pods, cgroups only for live pods.
	bridges := map[string]int{hc.bridge: len(want.pods)}
	for br, n := range want.bridges {
		bridges[br] = n
	}
	for br, n := range bridges {
		if got := privateBridgePorts(br); got != n {
			add("bridge %s has %d ports, want %d", br, got, n)
		}
	}
	var wantIDs []string
	for _, k := range wantContainers {
		parts := strings.Split(k, "/") // namespace/pod/container
		wantIDs = append(wantIDs, strings.Join(parts, "_"))
	}
	if extra, missing := crashDiffSets(crashShimIDs(hc.namespace), wantIDs); len(extra)+len(missing) > 0 {
		add("containerd shims of namespace %s: %v left over, %v missing", hc.namespace, extra, missing)
	}
	p = append(p, hc.iptablesProblems(live)...)
	p = append(p, hc.cgroupProblems(live)...)
	sort.Strings(p)
	return p
}

// crashShim is a containerd shim process.
type crashShim struct {
	pid int
	id  string // the container it serves
}

// crashShims lists the shim processes serving containerd namespace ns (one per
// container: kelpie does not group them).
func crashShims(ns string) []crashShim {
	var out []crashShim
	for _, name := range crashDirNames("/proc") {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", name, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		var shimNS, id string
		for i := 0; i+1 < len(args); i++ {
			switch args[i] {
			case "-namespace":
				shimNS = args[i+1]
			case "-id":
				id = args[i+1]
			}
		}
		if shimNS == ns && id != "" {
			out = append(out, crashShim{pid: pid, id: id})
		}
	}
	return out
}

// crashShimIDs lists the containers the shims of namespace ns serve.
func crashShimIDs(ns string) []string {
	var ids []string
	for _, s := range crashShims(ns) {
		ids = append(ids, s.id)
	}
	return ids
}

// reap removes what the test left in its containerd namespace and kelpie
// could not: leases, and shims whose container record is gone. containerd
// reaches a shim only through a container of its ID, so one is made for
// the task's deletion and removed again; a shim containerd does not track
// at all (its start was cut short) is killed by its pid, which is this
// test's: the namespace is the test's own.
func (hc *hostCheck) reap() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if lss, err := hc.cd.LeasesService().List(ctx); err == nil {
		for _, l := range lss {
			hc.t.Logf("cleanup: deleting leftover lease %s", l.ID)
			_ = hc.cd.LeasesService().Delete(ctx, l)
		}
	}
	orphans := func() []crashShim {
		var out []crashShim
		for _, s := range crashShims(hc.namespace) {
			if _, err := hc.cd.LoadContainer(ctx, s.id); err != nil {
				out = append(out, s)
			}
		}
		return out
	}
	for _, s := range orphans() {
		hc.t.Logf("cleanup: deleting the task of orphaned shim %d (%s)", s.pid, s.id)
		c, err := hc.cd.NewContainer(ctx, s.id, containerd.WithNewSpec(oci.WithDefaultSpec()))
		if err != nil {
			hc.t.Logf("cleanup: container %s: %v", s.id, err)
			continue
		}
		_, _ = hc.cd.TaskService().Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: s.id})
		_ = c.Delete(ctx)
	}
	time.Sleep(500 * time.Millisecond)
	for _, s := range orphans() {
		hc.t.Logf("cleanup: killing shim %d (%s), which containerd does not track", s.pid, s.id)
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
	}
}

// crashStateNames turns "namespace/name" keys into state dir names.
func crashStateNames(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		ns, name, _ := strings.Cut(k, "/")
		out = append(out, crashStateName(ns, name))
	}
	return out
}

// iptablesProblems finds nat rules and chains of pods this host ran that
// are not live: masquerade and hostPort rules name the CNI container ID
// ("namespace_name") in a comment; the plugins' chains are hashes of the
// network name and that ID.
var crashIptablesID = regexp.MustCompile(`id: \\?"([^"\\]+)\\?"`)

func (hc *hostCheck) iptablesProblems(live map[string]bool) []string {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").CombinedOutput()
	if err != nil {
		return []string{fmt.Sprintf("iptables -t nat -S: %v: %s", err, out)}
	}
	namespaces := map[string]bool{}
	ever := map[string]bool{}
	for key := range hc.seen {
		ns, name, _ := strings.Cut(key, "/")
		namespaces[ns] = true
		ever[crashStateName(ns, name)] = true
	}
	var p []string
	text := string(out)
	for _, l := range strings.Split(text, "\n") {
		m := crashIptablesID.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ns, _, _ := strings.Cut(m[1], "_")
		if namespaces[ns] && !live[m[1]] {
			p = append(p, "iptables rule of a removed pod: "+l)
		}
	}
	for id := range ever {
		if live[id] {
			continue
		}
		for _, network := range []string{"kelpie", "kelpie-net-sensors"} {
			for _, prefix := range []string{"", "DN-"} {
				chain := crashCNIChain(network, id, prefix)
				if strings.Contains(text, "-N "+chain+"\n") {
					p = append(p, fmt.Sprintf("iptables chain %s of removed pod %s (network %s) left", chain, id, network))
				}
			}
		}
	}
	return p
}

// crashCNIChain is the nat chain the CNI plugins name after a network and a
// container ID (utils.MustFormatChainNameWithPrefix).
func crashCNIChain(network, id, prefix string) string {
	sum := sha512.Sum512([]byte(network + id))
	return fmt.Sprintf("CNI-%s%x", prefix, sum)[:28]
}

// cgroupProblems finds pod cgroups (CGROUP_ROOT/<containerd namespace>/
// namespace_name) of pods that are not live, in every hierarchy.
func (hc *hostCheck) cgroupProblems(live map[string]bool) []string {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return []string{fmt.Sprintf("read cgroup mounts: %v", err)}
	}
	left := map[string][]string{}
	for _, m := range mounts {
		ents, _ := os.ReadDir(filepath.Join(m.Mountpoint, hc.namespace))
		for _, e := range ents {
			if _, _, ok := strings.Cut(e.Name(), "_"); ok && e.IsDir() && !live[e.Name()] {
				left[e.Name()] = append(left[e.Name()], filepath.Base(m.Mountpoint))
			}
		}
	}
	var p []string
	for d, hier := range left {
		p = append(p, fmt.Sprintf("cgroup of removed pod %s left in %v", d, hier))
	}
	return p
}

// privateBridgePorts counts the interfaces attached to a bridge.
func privateBridgePorts(bridge string) int {
	out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).Output()
	if err != nil {
		return 0 // no such bridge: no ports
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

// crashDirNames lists the names in a directory; none when it does not exist.
func crashDirNames(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// crashDiffSets compares two multisets of strings: what have holds more than
// want, and what it lacks.
func crashDiffSets(have, want []string) (extra, missing []string) {
	count := map[string]int{}
	for _, s := range have {
		count[s]++
	}
	for _, s := range want {
		count[s]--
	}
	for s, n := range count {
		for ; n > 0; n-- {
			extra = append(extra, s)
		}
		for ; n < 0; n++ {
			missing = append(missing, s)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	return extra, missing
}

// removeNamespace removes the host's images and then its containerd
// namespace, once nothing else of kelpie's is left in it: the images'
// content and snapshots would otherwise stay behind on the test machine.
func (hc *hostCheck) removeNamespace() {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), hc.namespace), 60*time.Second)
	defer cancel()
	is := hc.cd.ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		hc.t.Logf("cleanup: list images of %s: %v", hc.namespace, err)
		return
	}
	for _, img := range imgs {
		if err := is.Delete(ctx, img.Name, images.SynchronousDelete()); err != nil {
			hc.t.Logf("cleanup: delete image %s of %s: %v", img.Name, hc.namespace, err)
		}
	}
	if err := hc.cd.NamespaceService().Delete(ctx, hc.namespace); err != nil {
		hc.t.Logf("cleanup: delete containerd namespace %s: %v", hc.namespace, err)
	}
}
