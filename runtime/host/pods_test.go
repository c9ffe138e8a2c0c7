package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/snapshots"
	"github.com/opencontainers/image-spec/identity"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/image"
)

// webPod is the seed's kind of pod: an nginx container and a busybox
// container that fetches its page over 127.0.0.1 into a shared emptyDir.
func webPod() reconciler.Pod {
	shared := []reconciler.Mount{{Volume: "shared", Path: "/shared"}}
	return reconciler.Pod{
		Namespace:              testNS,
		Name:                   "web-0",
		Hash:                   "sha256:" + strings.Repeat("1f", 32),
		Owner:                  reconciler.Owner{Kind: "Deployment", Name: "web"},
		RestartPolicy:          reconciler.RestartAlways,
		TerminationGracePeriod: 5 * time.Second,
		Hostname:               "web-0",
		Volumes:                []reconciler.Volume{{Name: "shared", Source: reconciler.EmptyDir{}}},
		Containers: []reconciler.Container{
			{
				Name: "nginx", Image: "nginx:1.7.9", PullPolicy: reconciler.PullIfNotPresent,
				Ports:  []reconciler.Port{{ContainerPort: 80, Protocol: "TCP"}},
				Mounts: shared,
				Env:    []reconciler.EnvVar{{Name: "TOKEN", Value: "s3cret-value", Secret: true}},
			},
			{
				Name: "fetcher", Image: testimage.BusyboxRef, PullPolicy: reconciler.PullIfNotPresent,
				Command: []string{"sh", "-c", `echo fetcher up; echo fetcher warns >&2
while true; do wget -q -O /shared/page.tmp http://127.0.0.1:80/ && mv /shared/page.tmp /shared/page; sleep 0.2; done`},
				Mounts: shared,
			},
		},
	}
}

func TestPodLifecycle(t *testing.T) {
	var logs bytes.Buffer
	tr := newTestRuntime(t, func(c *Config) { c.Log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil)) })
	ctx := tr.ctx(t)
	p := webPod()

	start := time.Now()
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	t.Logf("CreatePod took %s", time.Since(start))

	// Observe reports it, complete and running, with its hash.
	a, ok := tr.observePod(t, p.Namespace, p.Name)
	if !ok {
		t.Fatal("Observe does not report the pod")
	}
	if a.Hash != p.Hash || !a.SandboxReady || a.IP == "" || a.GracePeriod != 5*time.Second {
		t.Errorf("observed %+v; want hash %s, sandbox ready, an IP, grace 5s", a, p.Hash)
	}
	for _, name := range []string{"nginx", "fetcher"} {
		if c, ok := containerOf(a, name); !ok || c.State != reconciler.Running || c.Restarts != 0 {
			t.Errorf("container %s: %+v (found %v), want Running", name, c, ok)
		} else if c.StartedAt.Before(start.Add(-2*time.Second)) || c.StartedAt.After(time.Now().Add(2*time.Second)) {
			t.Errorf("container %s started at %v, want during CreatePod (from %v)", name, c.StartedAt, start)
		}
	}

	// Both containers share the network namespace: the fetcher reaches
	// nginx on 127.0.0.1 and writes the page to the shared emptyDir, where
	// the nginx container sees it.
	nginx, fetcher := tr.load(t, p.Namespace, p.Name, "nginx"), tr.load(t, p.Namespace, p.Name, "fetcher")
	waitFor(t, "the fetched page in the emptyDir", 20*time.Second, func() (bool, string) {
		out, errOut, code := tr.execIn(t, nginx, "cat", "/shared/page")
		return code == 0 && out == testimage.NginxIndex, fmt.Sprintf("exit %d: %q %q", code, out, errOut)
	})
	ns1, _, _ := tr.execIn(t, nginx, "readlink", "/proc/self/ns/net")
	ns2, _, _ := tr.execIn(t, fetcher, "readlink", "/proc/self/ns/net")
	if ns1 == "" || ns1 != ns2 {
		t.Errorf("network namespaces differ: %q, %q", ns1, ns2)
	}
	// The pod answers on its IP from the host.
	if body := httpGet(t, "http://"+a.IP+"/"); body != testimage.NginxIndex {
		t.Errorf("GET http://%s/ = %q", a.IP, body)
	}
	// Its host name and /etc files.
	if out, _, _ := tr.execIn(t, nginx, "hostname"); strings.TrimSpace(out) != "web-0" {
		t.Errorf("hostname = %q", out)
	}
	if out, _, _ := tr.execIn(t, nginx, "cat", "/etc/hosts"); !strings.Contains(out, a.IP+"\tweb-0") {
		t.Errorf("/etc/hosts lacks %s web-0:\n%s", a.IP, out)
	}
	if out, _, _ := tr.execIn(t, nginx, "sh", "-c", "echo $TOKEN"); strings.TrimSpace(out) != "s3cret-value" {
		t.Errorf("TOKEN = %q", out)
	}

	// CreatePod again changes nothing: same containers, same tasks.
	pids := taskPids(t, tr, nginx, fetcher)
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod again: %v", err)
	}
	if again := taskPids(t, tr, tr.load(t, p.Namespace, p.Name, "nginx"), tr.load(t, p.Namespace, p.Name, "fetcher")); again != pids {
		t.Errorf("tasks changed: %v, then %v", pids, again)
	}
	if recs, _ := tr.cd.ContainerService().List(ctx); len(recs) != 2 {
		t.Errorf("%d containers in the namespace, want 2", len(recs))
	}

	// Killed by hand, nginx is reported Exited; RestartContainer restarts
	// it and counts the restart.
	task, err := nginx.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "nginx reported Exited", 10*time.Second, func() (bool, string) {
		a, _ := tr.observePod(t, p.Namespace, p.Name)
		c, _ := containerOf(a, "nginx")
		return c.State == reconciler.Exited && c.ExitCode == 137 && !c.FinishedAt.IsZero(), fmt.Sprintf("%+v", c)
	})
	if err := tr.RestartContainer(ctx, p, "nginx"); err != nil {
		t.Fatalf("RestartContainer: %v", err)
	}
	a, _ = tr.observePod(t, p.Namespace, p.Name)
	if c, _ := containerOf(a, "nginx"); c.State != reconciler.Running || c.Restarts != 1 {
		t.Errorf("after restart: %+v, want Running with 1 restart", c)
	}
	waitFor(t, "nginx answering again", 10*time.Second, func() (bool, string) {
		body, err := tryHTTPGet("http://" + a.IP + "/")
		return err == nil && body == testimage.NginxIndex, fmt.Sprint(err)
	})
	// A running container is left alone.
	before := taskPids(t, tr, tr.load(t, p.Namespace, p.Name, "nginx"))
	if err := tr.RestartContainer(ctx, p, "nginx"); err != nil {
		t.Fatalf("RestartContainer of a running container: %v", err)
	}
	a, _ = tr.observePod(t, p.Namespace, p.Name)
	if c, _ := containerOf(a, "nginx"); c.Restarts != 1 || taskPids(t, tr, tr.load(t, p.Namespace, p.Name, "nginx")) != before {
		t.Errorf("RestartContainer touched a running container: %+v", c)
	}

	// Logs hold stdout and stderr.
	var out bytes.Buffer
	if err := tr.Logs(ctx, p.Namespace, p.Name, "fetcher", false, &out); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if !strings.Contains(out.String(), "fetcher up\n") || !strings.Contains(out.String(), "fetcher warns\n") {
		t.Errorf("logs = %q", out.String())
	}

	// Removal leaves nothing but the images; again, it is a no-op.
	start = time.Now()
	if err := tr.RemovePod(ctx, p.Namespace, p.Name, time.Second); err != nil {
		t.Fatalf("RemovePod: %v", err)
	}
	t.Logf("RemovePod took %s", time.Since(start))
	tr.assertPodGone(t, p.Namespace, p.Name)
	if err := tr.RemovePod(ctx, p.Namespace, p.Name, time.Second); err != nil {
		t.Errorf("RemovePod again: %v", err)
	}
	if strings.Contains(logs.String(), "s3cret-value") {
		t.Errorf("the runtime logged a Secret's value:\n%s", logs.String())
	}
}

func TestRemovePodThatDoesNotExist(t *testing.T) {
	tr := newTestRuntime(t, nil)
	if err := tr.RemovePod(tr.ctx(t), testNS, "nothing", time.Second); err != nil {
		t.Errorf("RemovePod: %v", err)
	}
}

func TestRemovePodKillsAfterGrace(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)

	// busybox sleep as PID 1 ignores SIGTERM: SIGKILL after the grace period.
	stubborn := busyboxPod("stubborn", "")
	stubborn.HostNetwork = true
	stubborn.Containers[0].Command = []string{"sleep", "1000"}
	// A shell that exits on SIGTERM does not wait for the grace period.
	polite := busyboxPod("polite", `trap "exit 0" TERM; while true; do sleep 0.1; done`)
	polite.HostNetwork = true
	for _, p := range []reconciler.Pod{stubborn, polite} {
		if err := tr.CreatePod(ctx, p); err != nil {
			t.Fatalf("CreatePod %s: %v", p.Name, err)
		}
	}
	start := time.Now()
	if err := tr.RemovePod(ctx, testNS, "stubborn", time.Second); err != nil {
		t.Fatalf("RemovePod: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("stubborn pod removed after %s, before its grace period", d)
	}
	tr.assertPodGone(t, testNS, "stubborn")

	// Wait until the shell has installed its trap: its PID 1 catches SIGTERM.
	pid := taskPids(t, tr, tr.load(t, testNS, "polite", "main"))
	testenv.Eventually(t, 10*time.Second, "the polite shell to trap SIGTERM", func() bool {
		return catches(pid, syscall.SIGTERM)
	})
	start = time.Now()
	if err := tr.RemovePod(ctx, testNS, "polite", time.Minute); err != nil {
		t.Fatalf("RemovePod: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("polite pod took %s to stop on SIGTERM", d)
	}
	tr.assertPodGone(t, testNS, "polite")
}

func TestCreatePodRefusesPrivileged(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("priv", "sleep 1000")
	p.Containers[0].Name = "tools"
	p.Containers[0].Security.Privileged = true
	err := tr.CreatePod(ctx, p)
	want := `refused: this host does not allow containers[0].securityContext.privileged: privileged container (--allow-privileged)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("CreatePod = %v, want an error containing %q", err, want)
	}
	if _, ok := tr.observePod(t, p.Namespace, p.Name); ok {
		t.Error("a refused pod was created in part")
	}
	if _, err := os.Stat(tr.podDir(p.Namespace, p.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod dir of a refused pod: %v", err)
	}

	allowed := newTestRuntime(t, func(c *Config) { c.AllowPrivileged = true })
	p.HostNetwork = true
	if err := allowed.CreatePod(allowed.ctx(t), p); err != nil {
		t.Fatalf("CreatePod with AllowPrivileged: %v", err)
	}
	spec, err := allowed.load(t, p.Namespace, p.Name, "tools").Spec(allowed.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(spec.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
		t.Errorf("privileged container lacks CAP_SYS_ADMIN: %v", spec.Process.Capabilities.Bounding)
	}
}

func TestInitContainers(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	work := []reconciler.Mount{{Volume: "work", Path: "/work"}}
	initC := func(name, script string) reconciler.Container {
		return reconciler.Container{Name: name, Image: testimage.BusyboxRef, Command: []string{"sh", "-c", script}, Mounts: work}
	}
	p := busyboxPod("ordered", "echo app >> /work/order; exec sleep 1000")
	p.HostNetwork = true
	p.Volumes = []reconciler.Volume{{Name: "work", Source: reconciler.EmptyDir{}}}
	p.Containers[0].Mounts = work
	p.InitContainers = []reconciler.Container{
		initC("first", "sleep 0.3; echo first >> /work/order"),
		initC("second", "echo second >> /work/order"),
	}
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	order := filepath.Join(tr.vols.PodDir(p.Namespace, p.Name), "work", "order")
	waitFor(t, "the app's line", 10*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(order)
		return string(b) == "first\nsecond\napp\n", fmt.Sprintf("%q", b)
	})
	a, _ := tr.observePod(t, p.Namespace, p.Name)
	for _, name := range []string{"first", "second"} {
		if c, _ := containerOf(a, name); c.State != reconciler.Exited || c.ExitCode != 0 {
			t.Errorf("init container %s: %+v, want Exited 0", name, c)
		}
	}
	if c, _ := containerOf(a, "main"); c.State != reconciler.Running {
		t.Errorf("app container: %+v, want Running", c)
	}
	// A started pod never runs its init containers again.
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod again: %v", err)
	}
	if b, _ := os.ReadFile(order); string(b) != "first\nsecond\napp\n" {
		t.Errorf("order after CreatePod again = %q", b)
	}

	// A failing init container: the app never starts, the failure is
	// reported, and CreatePod runs it again, counting a restart.
	bad := busyboxPod("broken", "sleep 1000")
	bad.HostNetwork = true
	bad.InitContainers = []reconciler.Container{{Name: "migrate", Image: testimage.BusyboxRef, Command: []string{"sh", "-c", "echo migrating; exit 3"}}}
	err := tr.CreatePod(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "init container migrate exited with code 3") {
		t.Fatalf("CreatePod = %v, want the init container's failure", err)
	}
	a, ok := tr.observePod(t, bad.Namespace, bad.Name)
	if !ok || a.Hash != bad.Hash {
		t.Fatalf("failed pod observed %+v (found %v)", a, ok)
	}
	if c, _ := containerOf(a, "migrate"); c.State != reconciler.Exited || c.ExitCode != 3 || c.FinishedAt.IsZero() {
		t.Errorf("init container: %+v, want Exited 3", c)
	}
	if _, ok := containerOf(a, "main"); ok {
		t.Error("the app container was created although its init container failed")
	}
	if err := tr.CreatePod(ctx, bad); err == nil {
		t.Fatal("CreatePod again succeeded")
	}
	a, _ = tr.observePod(t, bad.Namespace, bad.Name)
	if c, _ := containerOf(a, "migrate"); c.Restarts != 1 {
		t.Errorf("init container after a retry: %+v, want 1 restart", c)
	}
	var out bytes.Buffer
	if err := tr.Logs(ctx, bad.Namespace, bad.Name, "migrate", false, &out); err != nil || out.String() != "migrating\nmigrating\n" {
		t.Errorf("init logs = %q, %v", out.String(), err)
	}
}

func TestUnlabelledContainerUntouched(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("mine", "exec sleep 1000")
	p.HostNetwork = true
	img, err := tr.client.EnsureImage(ctx, testimage.BusyboxRef, image.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	// Someone's containers, one of them with the very ID kelpie would use.
	newForeign := func(id string, labels map[string]string) {
		t.Helper()
		_, err := tr.cd.NewContainer(ctx, id,
			containerd.WithImage(img.Containerd()),
			containerd.WithSnapshotter(tr.client.Snapshotter()),
			containerd.WithNewSnapshot(id, img.Containerd()),
			containerd.WithNewSpec(oci.WithImageConfig(img.Containerd())),
			containerd.WithContainerLabels(labels))
		if err != nil {
			t.Fatal(err)
		}
	}
	clash := containerIDOf(p.Namespace, p.Name, "main")
	newForeign(clash, nil)
	// Labelled as a pod's, but without kelpie's managed label.
	newForeign("someone-else", map[string]string{reconciler.LabelPod: testNS + "/mine", reconciler.LabelContainer: "main"})

	err = tr.CreatePod(ctx, p)
	if err == nil || !strings.Contains(err.Error(), "without kelpie's labels") {
		t.Fatalf("CreatePod over a foreign container = %v, want a refusal", err)
	}
	if a, ok := tr.observePod(t, p.Namespace, p.Name); ok && len(a.Containers) > 0 {
		t.Errorf("Observe reports foreign containers: %+v", a)
	}
	if err := tr.RemovePod(ctx, p.Namespace, p.Name, 0); err != nil {
		t.Fatalf("RemovePod: %v", err)
	}
	for _, id := range []string{clash, "someone-else"} {
		if _, err := tr.cd.LoadContainer(ctx, id); err != nil {
			t.Errorf("foreign container %s: %v", id, err)
		}
		if _, err := tr.cd.SnapshotService(tr.client.Snapshotter()).Stat(ctx, id); err != nil {
			t.Errorf("foreign snapshot %s: %v", id, err)
		}
	}
	// A pod of another name is created and removed around them.
	other := busyboxPod("theirs", "exec sleep 1000")
	other.HostNetwork = true
	if err := tr.CreatePod(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := tr.RemovePod(ctx, other.Namespace, other.Name, 0); err != nil {
		t.Fatal(err)
	}
	recs, err := tr.cd.ContainerService().List(ctx)
	if err != nil || len(recs) != 2 {
		t.Errorf("containers left: %d (%v), want the 2 foreign ones", len(recs), err)
	}
}

func TestObserveFindsInterruptedCreate(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)

	// A CreatePod killed after its snapshot and lease were made, before
	// the container record: only the pod dir, a lease and a snapshot exist.
	p := busyboxPod("interrupted", "exec sleep 1000")
	img, err := tr.client.EnsureImage(ctx, testimage.BusyboxRef, image.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.writePodMarker(&p); err != nil {
		t.Fatal(err)
	}
	id := containerIDOf(p.Namespace, p.Name, "main")
	lctx, _, err := tr.containerLease(ctx, id, reconciler.JoinName(p.Namespace, p.Name))
	if err != nil {
		t.Fatal(err)
	}
	diffIDs, err := img.Containerd().RootFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parent := identity.ChainID(diffIDs).String()
	if _, err := tr.cd.SnapshotService(tr.client.Snapshotter()).Prepare(lctx, id, parent, snapshots.WithLabels(map[string]string{
		reconciler.LabelManaged: reconciler.ManagedValue, reconciler.LabelPod: testNS + "/interrupted",
	})); err != nil {
		t.Fatal(err)
	}

	a, ok := tr.observePod(t, p.Namespace, p.Name)
	if !ok || a.Hash != p.Hash || a.SandboxReady || len(a.Containers) != 0 {
		t.Fatalf("observed %+v (found %v); want the pod with its hash, no sandbox, no containers", a, ok)
	}
	// Creating it again completes it; removing it leaves nothing.
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	a, _ = tr.observePod(t, p.Namespace, p.Name)
	if c, _ := containerOf(a, "main"); c.State != reconciler.Running || !a.SandboxReady {
		t.Errorf("after CreatePod: %+v", a)
	}
	if err := tr.RemovePod(ctx, p.Namespace, p.Name, 0); err != nil {
		t.Fatal(err)
	}
	tr.assertPodGone(t, p.Namespace, p.Name)

	// A sandbox alone (a CreatePod killed inside the network setup, with
	// its pod dir gone) is reported too, and removed.
	q := busyboxPod("netonly", "")
	if _, err := tr.net.Setup(ctx, q); err != nil {
		t.Fatal(err)
	}
	a, ok = tr.observePod(t, q.Namespace, q.Name)
	if !ok || a.Hash != "" || a.SandboxReady {
		t.Fatalf("sandbox-only pod observed %+v (found %v); want it, with no hash and not ready", a, ok)
	}
	if err := tr.RemovePod(ctx, q.Namespace, q.Name, 0); err != nil {
		t.Fatal(err)
	}
	tr.assertPodGone(t, q.Namespace, q.Name)
}

func TestCreatePodMissingImage(t *testing.T) {
	tr := newTestRuntime(t, nil)
	p := busyboxPod("ghost", "sleep 1")
	p.Containers[0].Image = "docker.io/library/nosuchimage:1"
	p.Containers[0].PullPolicy = reconciler.PullNever
	err := tr.CreatePod(tr.ctx(t), p)
	if !errors.Is(err, image.ErrImageNotFound) {
		t.Fatalf("CreatePod = %v, want ErrImageNotFound", err)
	}
	if _, ok := tr.observePod(t, p.Namespace, p.Name); ok {
		t.Error("a pod whose image is missing was created in part")
	}
}

// taskPids returns the PIDs of the containers' tasks, as one string.
func taskPids(t *testing.T, tr *testRuntime, conts ...containerd.Container) string {
	t.Helper()
	var pids []string
	for _, c := range conts {
		task, err := c.Task(tr.ctx(t), nil)
		if err != nil {
			t.Fatalf("task of %s: %v", c.ID(), err)
		}
		pids = append(pids, fmt.Sprint(task.Pid()))
	}
	return strings.Join(pids, ",")
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	var body string
	waitFor(t, "GET "+url, 10*time.Second, func() (bool, string) {
		b, err := tryHTTPGet(url)
		body = b
		return err == nil, fmt.Sprint(err)
	})
	return body
}

func tryHTTPGet(url string) (string, error) {
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestManyPodsConcurrently(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	const n, workers = 24, 4 // PITFALLS: more than ~4 workers adds latency, not throughput
	pods := make([]reconciler.Pod, n)
	for i := range pods {
		pods[i] = busyboxPod(fmt.Sprintf("many-%d", i), "exec sleep 1000")
		pods[i].HostNetwork = i%2 == 0 // half with a sandbox, half without
	}
	run := func(what string, fn func(reconciler.Pod) error) {
		t.Helper()
		start := time.Now()
		work := make(chan reconciler.Pod)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range work {
					errs <- fn(p)
				}
			}()
		}
		for _, p := range pods {
			work <- p
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		t.Logf("%s of %d pods with %d workers took %s", what, n, workers, time.Since(start))
	}
	run("CreatePod", func(p reconciler.Pod) error { return tr.CreatePod(ctx, p) })

	var took []time.Duration
	var a reconciler.Actual
	for range 5 {
		start := time.Now()
		var err error
		if a, err = tr.Observe(ctx); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("Observe of %d pods: median %s", n, took[len(took)/2])
	if len(a.Pods) != n {
		t.Fatalf("observed %d pods, want %d", len(a.Pods), n)
	}
	ips := map[string]bool{}
	for _, p := range a.Pods {
		if c, _ := containerOf(p, "main"); c.State != reconciler.Running || !p.SandboxReady || p.Hash == "" {
			t.Errorf("pod %s: %+v", p.Name, p)
		}
		if p.IP != "" {
			if ips[p.IP] {
				t.Errorf("IP %s given twice", p.IP)
			}
			ips[p.IP] = true
		}
	}
	if len(ips) != n/2 {
		t.Errorf("%d pod IPs, want %d", len(ips), n/2)
	}
	run("RemovePod", func(p reconciler.Pod) error { return tr.RemovePod(ctx, p.Namespace, p.Name, 0) })
	for _, p := range pods {
		tr.assertPodGone(t, p.Namespace, p.Name)
	}
}

func TestRemoveClaimRefusedWhileUsed(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	claim := reconciler.Claim{Namespace: testNS, Name: "db-data"}
	if err := tr.EnsureClaim(ctx, claim); err != nil {
		t.Fatal(err)
	}
	p := busyboxPod("db-0", "echo row > /var/lib/db/row; exec sleep 1000")
	p.HostNetwork = true
	p.Volumes = []reconciler.Volume{{Name: "data", Source: claim}}
	p.Containers[0].Mounts = []reconciler.Mount{{Volume: "data", Path: "/var/lib/db"}}
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatal(err)
	}
	err := tr.RemoveClaim(ctx, claim.Namespace, claim.Name)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "pod "+testNS+"/db-0 uses it") {
		t.Fatalf("RemoveClaim of a claim in use = %v", err)
	}
	// Removing the pod keeps the claim and its data.
	if err := tr.RemovePod(ctx, p.Namespace, p.Name, 0); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(tr.vols.ClaimDataDir(claim.Namespace, claim.Name), "row")); err != nil || string(b) != "row\n" {
		t.Errorf("claim data after the pod's removal: %q, %v", b, err)
	}
	if err := tr.RemoveClaim(ctx, claim.Namespace, claim.Name); err != nil {
		t.Fatalf("RemoveClaim: %v", err)
	}
	a, err := tr.Observe(ctx)
	if err != nil || len(a.Claims) != 0 {
		t.Errorf("claims after RemoveClaim: %+v, %v", a.Claims, err)
	}
}

// catches reports whether process pid has a handler for sig (its SigCgt
// mask in /proc/PID/status).
func catches(pid string, sig syscall.Signal) bool {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if mask, ok := strings.CutPrefix(l, "SigCgt:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			return err == nil && m&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}
