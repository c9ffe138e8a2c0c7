package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// outsideDir is a host directory no pod volume contains, holding one file
// "marker" reading "outside": what an escape would reach.
func outsideDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// assertOnlyMarker fails unless dir holds nothing but its marker, as
// outsideDir made it.
func assertOnlyMarker(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "marker" {
			t.Errorf("%s was written outside the volume", filepath.Join(dir, e.Name()))
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "marker")); err != nil || string(b) != "outside\n" {
		t.Errorf("the outside marker changed: %q, %v", b, err)
	}
}

// removeContainerOf deletes a pod's container by hand, as drift: the next
// CreatePod makes it again (and prepares the pod's volumes again).
func (tr *testRuntime) removeContainerOf(t *testing.T, p reconciler.Pod, name string) {
	t.Helper()
	if err := tr.removeContainer(tr.ctx(t), containerIDOf(p.Namespace, p.Name, name), 0); err != nil {
		t.Fatal(err)
	}
}

// taskRoot is the root directory of a container's running task as the
// host sees it, /proc/PID/root.
func (tr *testRuntime) taskRoot(t *testing.T, p reconciler.Pod, name string) string {
	t.Helper()
	task, err := tr.load(t, p.Namespace, p.Name, name).Task(tr.ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return "/proc/" + strconv.Itoa(int(task.Pid())) + "/root"
}

// TestProjectedVolumeSymlinkEscape is the audit's reproduction: a container
// plants a symlink to a host directory in every new version directory of
// its ConfigMap volume while the ConfigMap is updated; the update must
// never write through it. The volume is read-only inside the container
// even though the mount does not ask for it, as the kubelet mounts them.
func TestProjectedVolumeSymlinkEscape(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	outside := outsideDir(t)
	version := func(n int) reconciler.Projected {
		data := []byte(fmt.Sprint("v", n))
		// Many files before zz/key give the planter time to win the race.
		var files []reconciler.File
		for i := range 1000 {
			files = append(files, reconciler.File{Path: fmt.Sprintf("f%04d", i), Data: data, Mode: 0o644})
		}
		return reconciler.Projected{Files: append(files, reconciler.File{Path: "zz/key", Data: data, Mode: 0o644})}
	}
	p := busyboxPod("projected-escape", `touch /conf/planted 2>&1; echo rc=$?
while :; do for d in /conf/..v-*; do ln -s `+outside+` "$d/zz" 2>/dev/null; done; done`)
	p.HostNetwork = true
	p.Volumes = []reconciler.Volume{{Name: "conf", Source: version(0)}}
	p.Containers[0].Mounts = []reconciler.Mount{{Volume: "conf", Path: "/conf"}} // ReadOnly not asked for
	p.Containers = append(p.Containers, reconciler.Container{
		Name: "idle", Image: testimage.BusyboxRef, PullPolicy: reconciler.PullIfNotPresent,
		Command: []string{"sleep", "1000"},
	})
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	planter := tr.load(t, p.Namespace, p.Name, "main")
	if _, errOut, code := tr.execIn(t, planter, "touch", "/conf/written"); code == 0 || !strings.Contains(errOut, "Read-only") {
		t.Errorf("the ConfigMap volume is writable in the container: touch exit %d, %q", code, errOut)
	}

	// Updates of the ConfigMap reach the running pod (a container made
	// again prepares the volumes again).
	const updates = 3
	for n := 1; n <= updates; n++ {
		tr.removeContainerOf(t, p, "idle")
		p.Volumes[0].Source = version(n)
		if err := tr.CreatePod(ctx, p); err != nil {
			t.Logf("update %d: %v", n, err) // a planted link may fail an update; it must never be followed
		}
		if ents, _ := os.ReadDir(outside); len(ents) > 1 {
			break
		}
	}
	assertOnlyMarker(t, outside)
	if out, errOut, code := tr.execIn(t, planter, "cat", "/conf/zz/key"); code != 0 || out != fmt.Sprint("v", updates) {
		t.Errorf("after the updates the container reads %q (%s), want v%d", out, errOut, updates)
	}
	if err := tr.RemovePod(ctx, p.Namespace, p.Name, 0); err != nil {
		t.Fatal(err)
	}
	tr.assertPodGone(t, p.Namespace, p.Name)
	assertOnlyMarker(t, outside)
}

// TestSubPathMounts mounts subPaths of files, directories and in-volume
// symlinks of a ConfigMap volume and an emptyDir, and refuses those that
// leave the volume. Every subPath is mounted from a bind kelpie made under
// the pod's directory, and removing the pod unmounts them.
func TestSubPathMounts(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	outside := outsideDir(t)
	conf := reconciler.Projected{Files: []reconciler.File{
		{Path: "app.conf", Data: []byte("conf-data\n"), Mode: 0o644},
		{Path: "keys/extra.txt", Data: []byte("extra\n"), Mode: 0o644},
	}}
	data := []reconciler.Mount{{Volume: "data", Path: "/data"}}
	setup := `mkdir -p /data/dir && echo dir-data > /data/dir/f && echo file-data > /data/file && ln -s dir /data/rel &&
ln -s ` + outside + ` /data/abs && ln -s ../../../../../../../../../../` + outside + ` /data/up && ln -s abs /data/chain`
	pod := func(name string, mounts ...reconciler.Mount) reconciler.Pod {
		p := busyboxPod(name, "exec sleep 1000")
		p.HostNetwork = true
		p.Volumes = []reconciler.Volume{{Name: "conf", Source: conf}, {Name: "data", Source: reconciler.EmptyDir{}}}
		p.InitContainers = []reconciler.Container{{
			Name: "setup", Image: testimage.BusyboxRef, PullPolicy: reconciler.PullIfNotPresent,
			Command: []string{"sh", "-c", setup}, Mounts: data,
		}}
		p.Containers[0].Mounts = mounts
		return p
	}

	t.Run("inside", func(t *testing.T) {
		p := pod("subpaths",
			reconciler.Mount{Volume: "conf", Path: "/app.conf", SubPath: "app.conf"},
			reconciler.Mount{Volume: "conf", Path: "/keys", SubPath: "keys"},
			reconciler.Mount{Volume: "data", Path: "/d", SubPath: "dir"},
			reconciler.Mount{Volume: "data", Path: "/f", SubPath: "file"},
			reconciler.Mount{Volume: "data", Path: "/r", SubPath: "rel"},
			reconciler.Mount{Volume: "data", Path: "/new", SubPath: "made/by/kelpie"},
		)
		if err := tr.CreatePod(ctx, p); err != nil {
			t.Fatalf("CreatePod: %v", err)
		}
		cont := tr.load(t, p.Namespace, p.Name, "main")
		for path, want := range map[string]string{
			"/app.conf": "conf-data\n", "/keys/extra.txt": "extra\n", "/d/f": "dir-data\n", "/f": "file-data\n", "/r/f": "dir-data\n",
		} {
			if out, errOut, code := tr.execIn(t, cont, "cat", path); code != 0 || out != want {
				t.Errorf("cat %s = %q (exit %d, %s), want %q", path, out, code, errOut, want)
			}
		}
		if _, errOut, code := tr.execIn(t, cont, "touch", "/keys/x"); code == 0 || !strings.Contains(errOut, "Read-only") {
			t.Errorf("a subPath of a ConfigMap volume is writable: exit %d, %s", code, errOut)
		}
		if _, errOut, code := tr.execIn(t, cont, "touch", "/d/x", "/new/y"); code != 0 {
			t.Errorf("cannot write subPaths of an emptyDir: %s", errOut)
		}
		vol := filepath.Join(tr.vols.PodDir(p.Namespace, p.Name), "data")
		for _, f := range []string{"dir/x", "made/by/kelpie/y"} {
			if _, err := os.Stat(filepath.Join(vol, f)); err != nil {
				t.Errorf("written through the subPath: %v", err)
			}
		}
		spec, err := cont.Spec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		staging := filepath.Join(tr.vols.PodDir(p.Namespace, p.Name), ".subpaths") + "/"
		n := 0
		for _, m := range spec.Mounts {
			if slices.Contains([]string{"/app.conf", "/keys", "/d", "/f", "/r", "/new"}, m.Destination) {
				n++
				if !strings.HasPrefix(m.Source, staging) {
					t.Errorf("subPath %s is mounted from %s, not from kelpie's bind under %s", m.Destination, m.Source, staging)
				}
			}
		}
		if n != 6 {
			t.Errorf("%d subPath mounts in the spec, want 6", n)
		}
		if err := tr.RemovePod(ctx, p.Namespace, p.Name, 0); err != nil {
			t.Fatal(err)
		}
		tr.assertPodGone(t, p.Namespace, p.Name)
	})

	for i, sub := range []string{"abs", "up", "chain", "abs/marker"} {
		t.Run("refused "+sub, func(t *testing.T) {
			p := pod(fmt.Sprint("subpath-out-", i), reconciler.Mount{Volume: "data", Path: "/x", SubPath: sub})
			err := tr.CreatePod(ctx, p)
			if err == nil || !strings.Contains(err.Error(), "leaves the volume") {
				t.Errorf("CreatePod with subPath %s = %v, want a refusal", sub, err)
			}
			if recs, _ := tr.podContainers(ctx, p.Namespace, p.Name); recs["main"].ID != "" {
				t.Errorf("the container of a refused subPath was created")
			}
			assertOnlyMarker(t, outside)
			if err := tr.RemovePod(ctx, p.Namespace, p.Name, 0); err != nil {
				t.Fatal(err)
			}
			tr.assertPodGone(t, p.Namespace, p.Name)
		})
	}
}

// TestSubPathSwapRace is CVE-2017-1002101's race: one container of the pod
// swaps its subPath between a directory and a symlink to a host directory
// while the other container is created again and again. Whatever the
// timing, the created container sees the volume's directory or is refused,
// never the host directory.
func TestSubPathSwapRace(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	outside := outsideDir(t)
	p := busyboxPod("subpath-race", `cd /shared && mkdir sub && echo inside > sub/marker
while :; do usleep 5000; mv -T sub real; ln -s `+outside+` sub; usleep 5000; rm -f sub; mv -T real sub; done`)
	p.HostNetwork = true
	p.Volumes = []reconciler.Volume{{Name: "shared", Source: reconciler.EmptyDir{}}}
	p.Containers[0].Mounts = []reconciler.Mount{{Volume: "shared", Path: "/shared"}}
	p.Containers = append(p.Containers, reconciler.Container{
		Name: "victim", Image: testimage.BusyboxRef, PullPolicy: reconciler.PullIfNotPresent,
		Command: []string{"sleep", "1000"},
		Mounts:  []reconciler.Mount{{Volume: "shared", Path: "/sub", SubPath: "sub"}},
	})
	// The swapper's first container only: it must run before the victim's
	// subPath exists.
	swapperOnly := p
	swapperOnly.Containers = p.Containers[:1]
	if err := tr.CreatePod(ctx, swapperOnly); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	var inside, refused, other int
	for i := 0; i < 30; i++ {
		err := tr.CreatePod(ctx, p)
		if err != nil {
			if refused++; refused <= 3 {
				t.Logf("attempt %d: %v", i, err)
			}
			tr.removeContainerOf(t, p, "victim") // created, maybe, but not started
			continue
		}
		b, _ := os.ReadFile(filepath.Join(tr.taskRoot(t, p, "victim"), "sub", "marker"))
		switch string(b) {
		case "outside\n":
			t.Fatalf("attempt %d: the container was given the host directory %s", i, outside)
		case "inside\n":
			inside++
		default:
			other++ // an empty directory kelpie made while the name was free
		}
		tr.removeContainerOf(t, p, "victim")
	}
	t.Logf("30 attempts: %d mounted the volume's directory, %d an empty one kelpie made, %d refused", inside, other, refused)
	assertOnlyMarker(t, outside)
	if err := tr.RemovePod(ctx, p.Namespace, p.Name, 0); err != nil {
		t.Fatal(err)
	}
	tr.assertPodGone(t, p.Namespace, p.Name)
}

// TestRemoveClaimRefusedWhileSubPathUsed: a pod that mounts only a subPath
// of a claim uses the claim as much as one that mounts it whole.
func TestRemoveClaimRefusedWhileSubPathUsed(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	claim := reconciler.Claim{Namespace: testNS, Name: "sub-data"}
	if err := tr.EnsureClaim(ctx, claim); err != nil {
		t.Fatal(err)
	}
	p := busyboxPod("sub-db", "echo row > /db/row; exec sleep 1000")
	p.HostNetwork = true
	p.Volumes = []reconciler.Volume{{Name: "data", Source: claim}}
	p.Containers[0].Mounts = []reconciler.Mount{{Volume: "data", Path: "/db", SubPath: "db"}}
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatal(err)
	}
	err := tr.RemoveClaim(ctx, claim.Namespace, claim.Name)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "pod "+testNS+"/sub-db uses it") {
		t.Fatalf("RemoveClaim of a claim whose subPath is in use = %v", err)
	}
	if err := tr.RemovePod(ctx, p.Namespace, p.Name, 0); err != nil {
		t.Fatal(err)
	}
	tr.assertPodGone(t, p.Namespace, p.Name)
	if b, err := os.ReadFile(filepath.Join(tr.vols.ClaimDataDir(claim.Namespace, claim.Name), "db", "row")); err != nil || string(b) != "row\n" {
		t.Errorf("claim data after the pod's removal: %q, %v", b, err)
	}
	if err := tr.RemoveClaim(ctx, claim.Namespace, claim.Name); err != nil {
		t.Fatalf("RemoveClaim: %v", err)
	}
}

// TestSubPathRestagedOnRestart: kelpie's subPath binds do not survive a
// reboot of the host; a container restarted afterwards must see its
// volume again, not the empty staging path.
func TestSubPathRestagedOnRestart(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("subpath-restart", "exec sleep 1000")
	p.HostNetwork = true // no sandbox to lose: only the binds go
	p.Volumes = []reconciler.Volume{{Name: "data", Source: reconciler.EmptyDir{}}}
	p.InitContainers = []reconciler.Container{{
		Name: "setup", Image: testimage.BusyboxRef, PullPolicy: reconciler.PullIfNotPresent,
		Command: []string{"sh", "-c", "mkdir -p /data/dir && echo kept > /data/dir/f"},
		Mounts:  []reconciler.Mount{{Volume: "data", Path: "/data"}},
	}}
	p.Containers[0].Mounts = []reconciler.Mount{{Volume: "data", Path: "/d", SubPath: "dir"}}
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	t.Cleanup(func() { _ = tr.RemovePod(context.Background(), p.Namespace, p.Name, 0) })
	cont := tr.load(t, p.Namespace, p.Name, "main")
	spec, err := cont.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var staged string
	for _, m := range spec.Mounts {
		if m.Destination == "/d" {
			staged = m.Source
		}
	}
	if staged == "" {
		t.Fatal("no mount of /d in the spec")
	}
	// The reboot, as far as the subPath goes: the task ends, the bind goes.
	task, err := cont.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "main exited", 10*time.Second, func() (bool, string) {
		a, _ := tr.observePod(t, p.Namespace, p.Name)
		c, _ := containerOf(a, "main")
		return c.State == reconciler.Exited, fmt.Sprintf("%+v", c)
	})
	if err := syscall.Unmount(staged, syscall.MNT_DETACH); err != nil {
		t.Fatalf("unmount the staging bind %s: %v", staged, err)
	}
	if err := tr.RestartContainer(ctx, p, "main"); err != nil {
		t.Fatalf("RestartContainer: %v", err)
	}
	cont = tr.load(t, p.Namespace, p.Name, "main")
	if out, errOut, code := tr.execIn(t, cont, "cat", "/d/f"); code != 0 || out != "kept\n" {
		t.Errorf("after the restart the container reads /d/f = %q (exit %d, %s), want the volume's %q", out, code, errOut, "kept\n")
	}
}
