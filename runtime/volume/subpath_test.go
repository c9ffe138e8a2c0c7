package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// subPathVolume prepares an emptyDir "data" of pod ns/web holding a
// directory, a file and symlinks inside and out of it, and returns its
// path and a directory outside it holding one file "marker".
func subPathVolume(t *testing.T, v *Manager) (vol, outside string) {
	t.Helper()
	vol = prepare(t, v, volPod("web", reconciler.Volume{Name: "data", Source: reconciler.EmptyDir{}}))["data"]
	outside = t.TempDir()
	for _, err := range []error{
		os.WriteFile(filepath.Join(outside, "marker"), []byte("outside"), 0o644),
		os.MkdirAll(filepath.Join(vol, "dir"), 0o755),
		os.WriteFile(filepath.Join(vol, "dir", "marker"), []byte("inside"), 0o644),
		os.WriteFile(filepath.Join(vol, "file"), []byte("file"), 0o644),
		os.Symlink("dir", filepath.Join(vol, "rel")),
		os.Symlink("../dir", filepath.Join(vol, "dir", "self")),
		os.Symlink(outside, filepath.Join(vol, "abs")),
		os.Symlink("../../../../../../../../../../.."+outside, filepath.Join(vol, "up")),
		os.Symlink("abs", filepath.Join(vol, "chain")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return vol, outside
}

func TestMountSubPath(t *testing.T) {
	v := newTestVolumes(t)
	vol, outside := subPathVolume(t, v)
	for i, tc := range []struct {
		sub    string
		create bool
		want   string // what the staging path shows: a file's content, a directory's marker; "" when refused
	}{
		{"dir", false, "inside"},
		{"file", false, "file"},
		{"rel", false, "inside"},
		{"dir/self/self", false, "inside"},
		{"dir/../dir", false, "inside"},
		{"made/by/kelpie", true, "made"},
		{"missing", false, ""},
		{"abs", true, ""},
		{"abs/marker", true, ""},
		{"up", true, ""},
		{"chain", true, ""},
		{"../x", true, ""},
		{"/etc", true, ""},
		{"abs/new", true, ""},
	} {
		t.Run(tc.sub, func(t *testing.T) {
			staging, err := v.MountSubPath(SubPath{Namespace: "ns", Pod: "web", Volume: "data", Root: vol, Container: "c", Index: i, Path: tc.sub, Create: tc.create})
			if tc.want == "" {
				if err == nil {
					t.Fatalf("subPath %q mounted at %s, want a refusal", tc.sub, staging)
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("subPath %q: %v, want errdefs.ErrInvalidArgument", tc.sub, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("subPath %q: %v", tc.sub, err)
			}
			if !strings.HasPrefix(staging, filepath.Join(v.PodDir("ns", "web"), subPathsDir)+"/") {
				t.Errorf("staged at %s, outside the pod's staging dir", staging)
			}
			if m := mountsUnder(t, staging); len(m) != 1 {
				t.Errorf("%d mounts at %s, want 1", len(m), staging)
			}
			var got []byte
			if fi, err := os.Stat(staging); err == nil && fi.IsDir() {
				got, _ = os.ReadFile(filepath.Join(staging, "marker"))
				if tc.want == "made" {
					if _, err := os.Stat(filepath.Join(vol, tc.sub)); err == nil {
						got = []byte("made")
					}
				}
			} else {
				got, _ = os.ReadFile(staging)
			}
			if string(got) != tc.want {
				t.Errorf("staging shows %q, want %q", got, tc.want)
			}
		})
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("%s was written to: %d entries", outside, len(ents))
	}

	// Staging the same mount again replaces the old bind.
	for range 2 {
		if _, err := v.MountSubPath(SubPath{Namespace: "ns", Pod: "web", Volume: "data", Root: vol, Container: "c", Index: 0, Path: "file"}); err != nil {
			t.Fatal(err)
		}
	}
	if m := mountsUnder(t, filepath.Join(v.PodDir("ns", "web"), subPathsDir, "data", "c", "0")); len(m) != 1 {
		t.Errorf("%d mounts after staging again, want 1", len(m))
	}
	// Remove unmounts every staging bind.
	if err := v.Remove("ns", "web"); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, v.podsDir); len(m) != 0 {
		t.Errorf("mounts left after Remove: %+v", m)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "marker")); err != nil || string(b) != "outside" {
		t.Errorf("outside marker: %q, %v", b, err)
	}
}

// TestMountSubPathSwapRace swaps a subPath between a directory and a
// symlink out of the volume while it is mounted over and over: the staging
// mount shows the directory or nothing, never what the symlink points to.
func TestMountSubPathSwapRace(t *testing.T) {
	v := newTestVolumes(t)
	vol, outside := subPathVolume(t, v)
	sub, real, link := filepath.Join(vol, "sub"), filepath.Join(vol, "real"), filepath.Join(vol, "link")
	if err := os.Rename(filepath.Join(vol, "dir"), sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			_ = os.Rename(sub, real)
			_ = os.Rename(link, sub)
			_ = os.Rename(sub, link)
			_ = os.Rename(real, sub)
		}
	}()
	var mounted, refused int
	for range 500 {
		staging, err := v.MountSubPath(SubPath{Namespace: "ns", Pod: "web", Volume: "data", Root: vol, Container: "c", Path: "sub"})
		if err != nil {
			refused++
			continue
		}
		mounted++
		if b, _ := os.ReadFile(filepath.Join(staging, "marker")); string(b) == "outside" {
			t.Errorf("the staging mount shows the directory outside the volume")
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d mounted, %d refused", mounted, refused)
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("%s was written to: %d entries", outside, len(ents))
	}
}

func TestShows(t *testing.T) {
	v := newTestVolumes(t)
	vol, _ := subPathVolume(t, v)
	staging, err := v.MountSubPath(SubPath{Namespace: "ns", Pod: "web", Volume: "data", Root: vol, Container: "c", Path: "dir"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		source, dir string
		want        bool
	}{
		{vol, vol, true},
		{filepath.Join(vol, "dir"), vol, true},
		{vol + "x", vol, false},
		{staging, vol, true},
		{staging, filepath.Join(vol, "dir"), true},
		{staging, filepath.Join(vol, "file"), false},
		{staging, t.TempDir(), false},
	} {
		if got, err := v.Shows(tc.source, tc.dir); err != nil || got != tc.want {
			t.Errorf("Shows(%s, %s) = %v, %v; want %v", tc.source, tc.dir, got, err, tc.want)
		}
	}
}
