package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kelpie-dev/kelpie/reconciler"
)

func TestProjectedConfigMapItemsModesAndUpdate(t *testing.T) {
	v := newTestVolumes(t)
	conf := reconciler.Projected{Files: []reconciler.File{
		{Path: "app.conf", Data: []byte("port=80\n"), Mode: 0o644},
		{Path: "keys/extra.txt", Data: []byte("extra"), Mode: 0o600},
		{Path: "old", Data: []byte("to be dropped"), Mode: 0o644},
	}}
	p := volPod("web", reconciler.Volume{Name: "conf", Source: conf})
	dir := prepare(t, v, p)["conf"]
	for _, f := range conf.Files {
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil || string(b) != string(f.Data) {
			t.Errorf("%s = %q, %v; want %q", f.Path, b, err, f.Data)
		}
		fi, err := os.Stat(filepath.Join(dir, f.Path))
		if err != nil || fi.Mode().Perm() != f.Mode {
			t.Errorf("%s mode %v, %v; want %v", f.Path, fi.Mode(), err, f.Mode)
		}
	}
	if m := mountsUnder(t, dir); len(m) != 0 {
		t.Errorf("a ConfigMap volume is mounted: %+v", m)
	}
	first, err := os.Readlink(filepath.Join(dir, projDataLink))
	if err != nil || !strings.HasPrefix(first, projVersionPfx) {
		t.Fatalf("..data -> %q, %v", first, err)
	}

	if _, err := v.Prepare(p); err != nil { // same content: same version
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, projDataLink)); again != first {
		t.Errorf("unchanged content was written again: ..data %s -> %s", first, again)
	}

	conf.Files = []reconciler.File{
		{Path: "app.conf", Data: []byte("port=8080\n"), Mode: 0o644},
		{Path: "keys/extra.txt", Data: []byte("extra"), Mode: 0o640}, // mode only
	}
	p.Volumes[0].Source = conf
	if _, err := v.Prepare(p); err != nil {
		t.Fatal(err)
	}
	second, _ := os.Readlink(filepath.Join(dir, projDataLink))
	if second == first {
		t.Fatalf("changed content was not projected again")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "app.conf")); string(b) != "port=8080\n" {
		t.Errorf("app.conf after update = %q", b)
	}
	if fi, err := os.Stat(filepath.Join(dir, "keys/extra.txt")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("keys/extra.txt after a mode change: %v, %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "old")); !os.IsNotExist(err) {
		t.Errorf("dropped key still there: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := fmt.Sprint([]string{projDataLink, second, "app.conf", "keys"}); fmt.Sprint(names) != want {
		t.Errorf("volume dir holds %v, want %s", names, want)
	}
}

// TestProjectedUpdateIsAtomic reads two files of a ConfigMap volume while it
// is updated over and over: both always come from the same version.
func TestProjectedUpdateIsAtomic(t *testing.T) {
	v := newTestVolumes(t)
	version := func(n int) reconciler.Projected {
		s := []byte(fmt.Sprint("v", n))
		return reconciler.Projected{Files: []reconciler.File{{Path: "a", Data: s, Mode: 0o644}, {Path: "b", Data: s, Mode: 0o644}}}
	}
	p := volPod("web", reconciler.Volume{Name: "conf", Source: version(0)})
	dir := prepare(t, v, p)["conf"]

	var stop atomic.Bool
	var torn, reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			// Read through ..data once, as a process that opened the
			// directory would: both files of one version.
			data, err := os.Readlink(filepath.Join(dir, projDataLink))
			if err != nil {
				torn.Add(1)
				continue
			}
			a, errA := os.ReadFile(filepath.Join(dir, data, "a"))
			b, errB := os.ReadFile(filepath.Join(dir, data, "b"))
			if errA != nil || errB != nil {
				continue // that version was removed meanwhile: a reader retries
			}
			reads.Add(1)
			if string(a) != string(b) {
				torn.Add(1)
			}
		}
	}()
	for n := 1; n <= 50; n++ {
		p.Volumes[0].Source = version(n)
		if _, err := v.Prepare(p); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if torn.Load() != 0 {
		t.Errorf("%d of %d reads saw a torn update or no ..data", torn.Load(), reads.Load())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "v50" {
		t.Errorf("a = %q after the last update, want v50", b)
	}
}

func TestProjectedSecretOnTmpfs(t *testing.T) {
	v := newTestVolumes(t)
	secret := reconciler.Projected{Secret: true, Files: []reconciler.File{
		{Path: "token", Data: []byte("s3cr3t"), Mode: 0o400},
		{Path: "nomode", Data: []byte("x")},
	}}
	dir := prepare(t, v, volPod("web", reconciler.Volume{Name: "creds", Source: secret}))["creds"]
	mounts := mountsUnder(t, dir)
	if len(mounts) != 1 || mounts[0].FSType != "tmpfs" || mounts[0].Mountpoint != dir {
		t.Fatalf("mounts on the secret volume = %+v, want one tmpfs", mounts)
	}
	for name, mode := range map[string]os.FileMode{"token": 0o400, "nomode": 0o400} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", name, fi, err, mode)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "token")); string(b) != "s3cr3t" {
		t.Errorf("token = %q", b)
	}
	if err := v.Remove("ns", "web"); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, v.podsDir); len(m) != 0 {
		t.Errorf("mounts left after remove: %+v", m)
	}
}

func TestProjectedRejectsEscapingPaths(t *testing.T) {
	v := newTestVolumes(t)
	for _, path := range []string{"../x", "/etc/passwd", "a/../../x", "..data", "./a", "a//b", ""} {
		p := volPod("web", reconciler.Volume{Name: "conf", Source: reconciler.Projected{
			Files: []reconciler.File{{Path: path, Data: []byte("x"), Mode: 0o644}},
		}})
		if _, err := v.Prepare(p); err == nil {
			t.Errorf("projected path %q accepted", path)
		}
	}
	if err := v.Remove("ns", "web"); err != nil {
		t.Fatal(err)
	}
}

func TestProjectedErrorsNeverHoldData(t *testing.T) {
	v := newTestVolumes(t)
	// A file under a path that is a file already: the write fails.
	secret := reconciler.Projected{Secret: true, Files: []reconciler.File{
		{Path: "a", Data: []byte("TOPSECRET"), Mode: 0o400},
		{Path: "a/b", Data: []byte("TOPSECRET"), Mode: 0o400},
	}}
	p := volPod("web", reconciler.Volume{Name: "creds", Source: secret})
	t.Cleanup(func() { _ = v.Remove("ns", "web") })
	_, err := v.Prepare(p)
	if err == nil {
		t.Fatal("prepare of conflicting paths succeeded")
	}
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("error shows secret data: %v", err)
	}
}

// TestProjectedWriterNeverFollowsPlantedLinks plants, as a container with
// write access to the volume could, a symlink to a host directory in every
// new version directory while the volume is updated: the writer must never
// write through it.
func TestProjectedWriterNeverFollowsPlantedLinks(t *testing.T) {
	v := newTestVolumes(t)
	outside := t.TempDir()
	version := func(n int) reconciler.Projected {
		data := []byte(fmt.Sprint("v", n))
		var files []reconciler.File
		for i := range 200 {
			files = append(files, reconciler.File{Path: fmt.Sprintf("f%03d", i), Data: data, Mode: 0o644})
		}
		return reconciler.Projected{Files: append(files, reconciler.File{Path: "zz/key", Data: data, Mode: 0o644})}
	}
	p := volPod("web", reconciler.Volume{Name: "conf", Source: version(0)})
	dir := prepare(t, v, p)["conf"]

	var stop atomic.Bool
	var planted atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), projVersionPfx) && os.Symlink(outside, filepath.Join(dir, e.Name(), "zz")) == nil {
					planted.Add(1)
				}
			}
		}
	}()
	for n := 1; n <= 8; n++ {
		p.Volumes[0].Source = version(n)
		_, _ = v.Prepare(p) // a planted link may fail an update; it must never be followed
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d links planted", planted.Load())
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Errorf("the writer followed a planted link: %s holds %d entries", outside, len(ents))
	}
	// Unattacked, the next update goes through.
	p.Volumes[0].Source = version(9)
	if _, err := v.Prepare(p); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "zz/key")); string(b) != "v9" {
		t.Errorf("zz/key = %q, want v9", b)
	}
}
