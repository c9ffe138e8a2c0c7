package volume

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// newTestVolumes makes volumes on a fresh state dir. Volumes need root
// (tmpfs mounts, ownership).
func newTestVolumes(t *testing.T, allow ...string) *Manager {
	t.Helper()
	testenv.Root(t)
	v, err := New(Config{StateDir: t.TempDir(), AllowHostPaths: allow})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// volPod is a pod of namespace "ns" with the given volumes.
func volPod(name string, vols ...reconciler.Volume) reconciler.Pod {
	return reconciler.Pod{Namespace: "ns", Name: name, Volumes: vols}
}

// prepare prepares p and removes its volumes when the test ends.
func prepare(t *testing.T, v *Manager, p reconciler.Pod) map[string]string {
	t.Helper()
	t.Cleanup(func() {
		if err := v.Remove(p.Namespace, p.Name); err != nil {
			t.Errorf("remove volumes of %s: %v", p.Name, err)
		}
	})
	paths, err := v.Prepare(p)
	if err != nil {
		t.Fatalf("prepare %s: %v", p.Name, err)
	}
	return paths
}

// mountsAt counts the mounts on path and lists them below it.
func mountsUnder(t *testing.T, path string) []*mountinfo.Info {
	t.Helper()
	m, err := mountinfo.GetMounts(mountinfo.PrefixFilter(path))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEmptyDirOnDisk(t *testing.T) {
	v := newTestVolumes(t)
	p := volPod("web", reconciler.Volume{Name: "cache", Source: reconciler.EmptyDir{}})
	paths := prepare(t, v, p)
	want := filepath.Join(v.podsDir, "ns_web", "volumes", "cache")
	if paths["cache"] != want {
		t.Fatalf("cache at %q, want %q", paths["cache"], want)
	}
	fi, err := os.Stat(want)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Fatalf("emptyDir %v, %v; want a directory of mode 0777", fi, err)
	}
	if err := os.WriteFile(filepath.Join(want, "f"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Prepare(p); err != nil { // again: keeps the content
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(want, "f")); string(b) != "kept" {
		t.Errorf("second prepare lost the emptyDir's content")
	}
	for i := 0; i < 2; i++ {
		if err := v.Remove("ns", "web"); err != nil {
			t.Fatalf("remove %d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Errorf("emptyDir after remove: %v", err)
	}
}

func TestEmptyDirMemoryIsSizedTmpfs(t *testing.T) {
	v := newTestVolumes(t)
	p := volPod("web", reconciler.Volume{Name: "scratch", Source: reconciler.EmptyDir{Medium: "Memory", SizeLimit: 4 << 20}})
	paths := prepare(t, v, p)
	if _, err := v.Prepare(p); err != nil { // again: no second mount
		t.Fatal(err)
	}
	mounts := mountsUnder(t, paths["scratch"])
	if len(mounts) != 1 || mounts[0].FSType != "tmpfs" || !strings.Contains(mounts[0].VFSOptions, "size=4096k") {
		t.Fatalf("mounts on the emptyDir = %+v, want one tmpfs of size=4096k", mounts)
	}
	if fi, err := os.Stat(paths["scratch"]); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmpfs root %v, %v; want mode 0777", fi, err)
	}
	if err := v.Remove("ns", "web"); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, v.podsDir); len(m) != 0 {
		t.Errorf("mounts left after remove: %+v", m)
	}
	if _, err := os.Stat(filepath.Join(v.podsDir, "ns_web")); !os.IsNotExist(err) {
		t.Errorf("pod dir after remove: %v", err)
	}
}

func TestRemoveAfterCrashMidRemove(t *testing.T) {
	v := newTestVolumes(t)
	p := volPod("web",
		reconciler.Volume{Name: "a", Source: reconciler.EmptyDir{Medium: "Memory"}},
		reconciler.Volume{Name: "b", Source: reconciler.EmptyDir{Medium: "Memory"}},
		reconciler.Volume{Name: "s", Source: reconciler.Projected{Secret: true, Files: []reconciler.File{{Path: "k", Data: []byte("v"), Mode: 0o400}}}},
	)
	paths := prepare(t, v, p)
	// Killed after unmounting one of three tmpfs mounts.
	if err := syscall.Unmount(paths["a"], 0); err != nil {
		t.Fatal(err)
	}
	if err := v.Remove("ns", "web"); err != nil {
		t.Fatalf("remove after a partial remove: %v", err)
	}
	if m := mountsUnder(t, v.podsDir); len(m) != 0 {
		t.Errorf("mounts left: %+v", m)
	}
}

func TestPrepareAfterCrashMidPrepare(t *testing.T) {
	v := newTestVolumes(t)
	secret := reconciler.Projected{Secret: true, Files: []reconciler.File{{Path: "token", Data: []byte("s3cr3t"), Mode: 0o400}}}
	p := volPod("web", reconciler.Volume{Name: "creds", Source: secret})
	// Killed after the tmpfs mount, before the files were published.
	dir := filepath.Join(v.PodDir("ns", "web"), "creds")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountTmpfs(dir, projTmpfsMode, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, projVersionPfx+"torn"), 0o755); err != nil {
		t.Fatal(err)
	}
	paths := prepare(t, v, p)
	if b, err := os.ReadFile(filepath.Join(paths["creds"], "token")); err != nil || string(b) != "s3cr3t" {
		t.Errorf("token = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, projVersionPfx+"torn")); !os.IsNotExist(err) {
		t.Errorf("torn version left: %v", err)
	}
	if m := mountsUnder(t, dir); len(m) != 1 {
		t.Errorf("mounts on the secret volume: %d, want 1", len(m))
	}
}

func TestFSGroupOwnsWritableVolumes(t *testing.T) {
	v := newTestVolumes(t)
	gid := int64(4321)
	p := volPod("web",
		reconciler.Volume{Name: "cache", Source: reconciler.EmptyDir{}},
		reconciler.Volume{Name: "conf", Source: reconciler.Projected{Files: []reconciler.File{{Path: "a", Data: []byte("x"), Mode: 0o600}}}},
	)
	p.FSGroup = &gid
	paths := prepare(t, v, p)
	var st syscall.Stat_t
	if err := syscall.Stat(paths["cache"], &st); err != nil {
		t.Fatal(err)
	}
	if st.Gid != uint32(gid) || st.Mode&syscall.S_ISGID == 0 {
		t.Errorf("emptyDir gid %d mode %o, want gid %d and setgid", st.Gid, st.Mode, gid)
	}
	if err := syscall.Stat(filepath.Join(paths["conf"], "a"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Gid != uint32(gid) || st.Mode&0o777 != 0o640 {
		t.Errorf("projected file gid %d mode %o, want gid %d mode 0640", st.Gid, st.Mode&0o777, gid)
	}
}

func TestPrepareRejectsBadVolumes(t *testing.T) {
	v := newTestVolumes(t)
	for _, vol := range []reconciler.Volume{
		{Name: "../x", Source: reconciler.EmptyDir{}},
		{Name: "m", Source: reconciler.EmptyDir{Medium: "HugePages"}},
		{Name: "n"},
	} {
		if _, err := v.Prepare(volPod("bad", vol)); err == nil {
			t.Errorf("prepare accepted volume %+v", vol)
		}
	}
	if err := v.Remove("ns", "bad"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Prepare(reconciler.Pod{Namespace: "a_b", Name: "x"}); err == nil {
		t.Errorf("prepare accepted a namespace with '_'")
	}
}
