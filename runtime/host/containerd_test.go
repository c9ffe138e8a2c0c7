package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/snapshots"
	"github.com/moby/sys/mountinfo"

	"github.com/kelpie-dev/kelpie/internal/ctrtest"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/runtime/network"
	"github.com/kelpie-dev/kelpie/runtime/network/nettest"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// testImageDir holds the standard test images (busybox, nginx) as one OCI
// archive, built once per test process.
var (
	testImageOnce sync.Once
	testImageDir  string
	testImageErr  error
)

func standardImageDir(t *testing.T) string {
	t.Helper()
	testimage.NeedBusybox(t)
	testImageOnce.Do(func() {
		testImageDir, testImageErr = os.MkdirTemp("", "kelpie-test-images-")
		if testImageErr == nil {
			testImageErr = testimage.BuildArchive(filepath.Join(testImageDir, "standard.tar"), testimage.Standard()...)
		}
	})
	if testImageErr != nil {
		t.Fatal(testImageErr)
	}
	return testImageDir
}

// testRuntime is a Containerd in a containerd namespace, state dir, bridge
// and pod subnet of its own, with the standard test images in its image dir.
type testRuntime struct {
	*Containerd
	ns     string
	bridge string
}

// newTestRuntime makes a testRuntime; edit, when set, adjusts the config,
// which allows host network pods.
// When the test ends it removes every pod it finds, every container of its
// namespace (labelled or not), the namespace's images, the namespace, its
// cgroups and the bridge, and it checks that nothing of kelpie's is left.
func newTestRuntime(t *testing.T, edit func(*Config)) *testRuntime {
	t.Helper()
	testenv.Root(t)
	nettest.NeedCNI(t, network.RequiredPlugins...)
	addr := testenv.ContainerdAddress(t)
	images := standardImageDir(t)
	bridge := nettest.Bridge(t) // deleted after the cleanup below

	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	ns := "kelpie-test-" + hex.EncodeToString(b)
	cfg := Config{
		Address:    addr,
		Namespace:  ns,
		StateDir:   t.TempDir(),
		PodSubnet:  fmt.Sprintf("10.250.%d.0/24", nettest.FreeOctet(t, "10.250.")),
		BridgeName: bridge,
		ImageDirs:  []string{images},
		Log:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// Most tests run their pods in the host's network: no CNI needed.
		AllowHostNetwork: true,
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tr := &testRuntime{Containerd: c, ns: ns, bridge: bridge}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c.log = slog.New(slog.DiscardHandler) // t.Log after the test ends panics
		if a, err := c.Observe(ctx); err == nil {
			for _, p := range a.Pods {
				if err := c.RemovePod(ctx, p.Namespace, p.Name, 0); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		cctx := c.client.WithNamespace(ctx)
		if recs, err := c.cd.ContainerService().List(cctx); err == nil {
			for _, r := range recs {
				if err := c.removeContainer(cctx, r.ID, 0); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		if err := ctrtest.RemoveNamespace(c.cd, ns); err != nil {
			t.Errorf("cleanup: namespace %s: %v", ns, err)
		}
		removeCgroupDirs("/" + ns)
		c.Close()
	})
	return tr
}

// testWriter sends log records to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// ctx is a context in the runtime's containerd namespace, bounded for a test.
func (tr *testRuntime) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(tr.client.WithNamespace(context.Background()), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// observePod observes the host and returns the named pod.
func (tr *testRuntime) observePod(t *testing.T, ns, name string) (reconciler.ActualPod, bool) {
	t.Helper()
	a, err := tr.Observe(tr.ctx(t))
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	for _, p := range a.Pods {
		if p.Namespace == ns && p.Name == name {
			return p, true
		}
	}
	return reconciler.ActualPod{}, false
}

// containerOf returns the state of a container in an observed pod.
func containerOf(p reconciler.ActualPod, name string) (reconciler.ActualContainer, bool) {
	for _, c := range p.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return reconciler.ActualContainer{}, false
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load loads a pod's container.
func (tr *testRuntime) load(t *testing.T, ns, pod, name string) containerd.Container {
	t.Helper()
	cont, err := tr.cd.LoadContainer(tr.ctx(t), containerIDOf(ns, pod, name))
	if err != nil {
		t.Fatalf("load container %s/%s/%s: %v", ns, pod, name, err)
	}
	return cont
}

// execIn runs args in a container's running task, with the container's
// process settings, and returns its stdout, stderr and exit code.
func (tr *testRuntime) execIn(t *testing.T, cont containerd.Container, args ...string) (string, string, int) {
	t.Helper()
	ctx := tr.ctx(t)
	task, err := cont.Task(ctx, nil)
	if err != nil {
		t.Fatalf("exec %v: %v", args, err)
	}
	spec, err := cont.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps := *spec.Process
	ps.Args = args
	ps.Terminal = false
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	var stdout, stderr bytes.Buffer // one writer each: never shared
	p, err := task.Exec(ctx, "exec-"+hex.EncodeToString(b), &ps, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr)))
	if err != nil {
		t.Fatalf("exec %v: %v", args, err)
	}
	defer p.Delete(context.WithoutCancel(ctx))
	ch, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatalf("exec %v: start: %v", args, err)
	}
	var code uint32
	select {
	case es := <-ch:
		code = es.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("exec %v did not finish in 30s", args)
	}
	p.IO().Wait()
	return stdout.String(), stderr.String(), int(code)
}

// assertPodGone checks that nothing of a pod is left: no containers, tasks,
// snapshots or leases labelled as its, no network namespace, IP lease or
// sandbox record, no mounts under the state dir and no pod directory.
func (tr *testRuntime) assertPodGone(t *testing.T, ns, name string) {
	t.Helper()
	ctx := tr.ctx(t)
	key := reconciler.JoinName(ns, name)
	filter := podFilter(ns, name)
	if recs, err := tr.cd.ContainerService().List(ctx, filter); err != nil || len(recs) > 0 {
		t.Errorf("containers of %s left: %d (%v)", key, len(recs), err)
	}
	var snaps []string
	err := tr.cd.SnapshotService(tr.client.Snapshotter()).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive && (info.Labels[reconciler.LabelPod] == key || strings.HasPrefix(info.Name, statedir.Key(ns, name)+"_")) {
			snaps = append(snaps, info.Name)
		}
		return nil
	})
	if err != nil || len(snaps) > 0 {
		t.Errorf("snapshots of %s left: %v (%v)", key, snaps, err)
	}
	if ls, err := tr.cd.LeasesService().List(ctx); err != nil {
		t.Error(err)
	} else {
		for _, l := range ls {
			if l.Labels[reconciler.LabelPod] == key || strings.HasPrefix(l.ID, statedir.Key(ns, name)+"_") {
				t.Errorf("lease of %s left: %s", key, l.ID)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(tr.cfg.StateDir, statedir.NetNS, statedir.Key(ns, name))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("network namespace of %s left (%v)", key, err)
	}
	leaseDir := filepath.Join(tr.cfg.StateDir, statedir.CNILeases)
	_ = filepath.WalkDir(leaseDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && net.ParseIP(d.Name()) != nil {
			b, _ := os.ReadFile(p)
			if first, _, _ := strings.Cut(string(b), "\n"); strings.TrimSpace(first) == network.ContainerID(ns, name) {
				t.Errorf("IP lease of %s left: %s", key, p)
			}
		}
		return nil
	})
	sbs, err := tr.net.Sandboxes()
	if err != nil {
		t.Fatal(err)
	}
	if sb, ok := sbs[key]; ok {
		t.Errorf("sandbox of %s left: %+v", key, sb)
	}
	for _, dir := range []string{tr.podDir(ns, name), filepath.Join(tr.cfg.StateDir, statedir.NetNS, statedir.Key(ns, name))} {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mounts {
			t.Errorf("mount of %s left: %s (%s)", key, m.Mountpoint, m.FSType)
		}
	}
	if _, err := os.Lstat(tr.podDir(ns, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod dir of %s left (%v)", key, err)
	}
	cgroups, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cgroups {
		if dir := filepath.Join(m.Mountpoint, tr.podCgroup(ns, name)); dirExists(dir) {
			t.Errorf("cgroup of %s left: %s", key, dir)
		}
	}
	if _, ok := tr.observePod(t, ns, name); ok {
		t.Errorf("Observe still reports %s", key)
	}
}

// testNS is the Kubernetes namespace of the test pods: one of this test
// process's own, so that the host-wide names CNI derives from a pod's
// namespace and name (iptables chains) never meet those of another kelpie
// on the host, such as the tests of another package running meanwhile.
var testNS = fmt.Sprintf("kt%x", os.Getpid())

// busyboxPod is a pod of one busybox container running sh -c script.
func busyboxPod(name, script string) reconciler.Pod {
	return reconciler.Pod{
		Namespace:              testNS,
		Name:                   name,
		Hash:                   "sha256:" + strings.Repeat("ab", 32),
		Owner:                  reconciler.Owner{Kind: "Pod", Name: name},
		RestartPolicy:          reconciler.RestartAlways,
		TerminationGracePeriod: 2 * time.Second,
		Hostname:               name,
		Containers: []reconciler.Container{{
			Name: "main", Image: testimage.BusyboxRef, PullPolicy: reconciler.PullIfNotPresent,
			Command: []string{"sh", "-c", script},
		}},
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"defaults", Config{}, ""},
		{"namespace", Config{Namespace: "Bad Namespace!"}, "Namespace"},
		{"relative state dir", Config{StateDir: "var/lib/kelpie"}, "StateDir"},
		{"relative cni dir", Config{CNIBinDir: []string{"/usr/lib/cni", "cni"}}, "CNIBinDir[1]"},
		{"subnet", Config{PodSubnet: "10.244.0.0"}, "PodSubnet"},
		{"subnet host bits", Config{PodSubnet: "10.244.0.1/24"}, "did you mean 10.244.0.0/24"},
		{"subnet too small", Config{PodSubnet: "10.244.0.0/31"}, "too small"},
		{"subnet v6", Config{PodSubnet: "fd00::/64"}, "only IPv4"},
		{"empty image dir", Config{ImageDirs: []string{""}}, "ImageDirs[0]"},
		{"relative host path", Config{AllowHostPaths: []string{"/srv", "data"}}, "AllowHostPaths[1]"},
		{"unknown capability", Config{AllowCapabilities: []string{"NET_ADMIN", "CAP_FLY"}}, `--allow-capability "CAP_FLY"`},
		{"capability ALL", Config{AllowCapabilities: []string{"all"}}, "use --allow-privileged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			err := cfg.validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				if cfg.Namespace != image.DefaultNamespace || cfg.StateDir != statedir.Default || cfg.Address != image.DefaultAddress ||
					cfg.PodSubnet != network.DefaultPodSubnet || cfg.Log == nil {
					t.Errorf("defaults not filled: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("validate = %v, want an error naming %q", err, tc.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("validate = %v, want errdefs.ErrInvalidArgument", err)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(context.Background(), Config{StateDir: "relative"})
	if err == nil || !strings.Contains(err.Error(), "StateDir") {
		t.Errorf("New = %v, want an error naming StateDir", err)
	}
}

func TestContainerIDOf(t *testing.T) {
	long := strings.Repeat("a", 60)
	for _, tc := range []struct{ ns, pod, ctr, want string }{
		{"default", "web-0", "nginx", "default_web-0_nginx"},
		{"default", "web.example", "nginx", "default_web.example_nginx"},
		{"default", long, "nginx", ""},
		{"default", "a--b", "c", ""}, // containerd refuses runs of separators
	} {
		id := containerIDOf(tc.ns, tc.pod, tc.ctr)
		if tc.want != "" && id != tc.want {
			t.Errorf("containerIDOf(%s, %s, %s) = %q, want %q", tc.ns, tc.pod, tc.ctr, id, tc.want)
		}
		if len(id) > 76 {
			t.Errorf("containerIDOf(%s, %s, %s) = %q: longer than 76", tc.ns, tc.pod, tc.ctr, id)
		}
		if err := identifiers.Validate(id); err != nil {
			t.Errorf("containerIDOf(%s, %s, %s) = %q: %v", tc.ns, tc.pod, tc.ctr, id, err)
		}
		if again := containerIDOf(tc.ns, tc.pod, tc.ctr); again != id {
			t.Errorf("not deterministic: %q then %q", id, again)
		}
	}
	if containerIDOf("default", long, "a") == containerIDOf("default", long, "b") {
		t.Error("two containers of a long-named pod got one ID")
	}
	if containerIDOf("default", "a--b", "c") == containerIDOf("default", "a-b", "c") {
		t.Error("a--b and a-b got one ID")
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
