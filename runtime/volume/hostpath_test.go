package volume

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

func TestHostPathAllowList(t *testing.T) {
	allowed := filepath.Join(t.TempDir(), "srv")
	if err := os.MkdirAll(filepath.Join(allowed, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(allowed, "etc-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("data", filepath.Join(allowed, "data-link")); err != nil {
		t.Fatal(err)
	}
	v := newTestVolumes(t, allowed+"/") // a trailing slash is fine
	list := "[" + allowed + "/]"

	for _, tc := range []struct {
		path string
		want string // the bound path, or the error
	}{
		{allowed + "/data", allowed + "/data"},
		{allowed, allowed},
		{allowed + "/data-link", allowed + "/data"}, // a symlink inside is resolved
		{"/etc", "hostPath /etc is not allowed: not under --allow-host-path " + list},
		{allowed + "/etc-link", "hostPath " + allowed + "/etc-link is not allowed: resolves to /etc, not under --allow-host-path " + list},
		{allowed + "/../etc", "hostPath " + allowed + "/../etc is not allowed: resolves to " + filepath.Dir(allowed) + "/etc, not under --allow-host-path " + list},
		{allowed + "x", "hostPath " + allowed + "x is not allowed: not under --allow-host-path " + list},
		{"relative/path", "hostPath relative/path is not an absolute path"},
	} {
		got, err := v.hostPath(reconciler.HostPath{Path: tc.path})
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("hostPath(%s) = %s\nwant              %s", tc.path, got, tc.want)
		}
		if err != nil && strings.Contains(tc.want, "not allowed") && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("hostPath(%s) error is not errdefs.ErrInvalidArgument", tc.path)
		}
	}
}

func TestHostPathNoneAllowed(t *testing.T) {
	v := newTestVolumes(t)
	p := volPod("web", reconciler.Volume{Name: "etc", Source: reconciler.HostPath{Path: "/etc"}})
	_, err := v.Prepare(p)
	want := "volume etc of pod ns/web: hostPath /etc is not allowed: not under --allow-host-path []"
	if err == nil || err.Error() != want {
		t.Errorf("prepare = %v\nwant      %s", err, want)
	}
}

func TestHostPathTypes(t *testing.T) {
	allowed := t.TempDir()
	v := newTestVolumes(t, allowed)
	mk := func(name string, dir bool) string {
		p := filepath.Join(allowed, name)
		var err error
		if dir {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	dir, file := mk("dir", true), mk("file", false)
	sock := filepath.Join(allowed, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	for _, tc := range []struct {
		path, typ string
		ok        bool
	}{
		{dir, "Directory", true},
		{file, "Directory", false},
		{filepath.Join(allowed, "missing"), "Directory", false},
		{filepath.Join(allowed, "new/sub"), "DirectoryOrCreate", true},
		{file, "DirectoryOrCreate", false},
		{file, "File", true},
		{dir, "File", false},
		{filepath.Join(allowed, "newfile"), "FileOrCreate", true},
		{filepath.Join(allowed, "nodir/newfile"), "FileOrCreate", false},
		{sock, "Socket", true},
		{file, "Socket", false},
		{"/dev/null", "CharDevice", false}, // not under the allowed prefix
		{filepath.Join(allowed, "anything"), "", true},
		{dir, "Weird", false},
	} {
		got, err := v.hostPath(reconciler.HostPath{Path: tc.path, Type: tc.typ})
		if (err == nil) != tc.ok {
			t.Errorf("hostPath(%s, %q) = %q, %v; want ok=%v", tc.path, tc.typ, got, err, tc.ok)
		}
	}
	if fi, err := os.Stat(filepath.Join(allowed, "new/sub")); err != nil || !fi.IsDir() {
		t.Errorf("DirectoryOrCreate did not create: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(allowed, "newfile")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("FileOrCreate did not create: %v", err)
	}

	// Device types, under a prefix that holds devices.
	vdev := newTestVolumes(t, "/dev")
	if _, err := vdev.hostPath(reconciler.HostPath{Path: "/dev/null", Type: "CharDevice"}); err != nil {
		t.Errorf("/dev/null as CharDevice: %v", err)
	}
	if _, err := vdev.hostPath(reconciler.HostPath{Path: "/dev/null", Type: "BlockDevice"}); err == nil {
		t.Errorf("/dev/null accepted as BlockDevice")
	}
}

func TestHostPathDanglingSymlinkRefused(t *testing.T) {
	allowed := t.TempDir()
	if err := os.Symlink("/nonexistent-kelpie-target/x", filepath.Join(allowed, "dangling")); err != nil {
		t.Fatal(err)
	}
	v := newTestVolumes(t, allowed)
	for _, typ := range []string{"", "DirectoryOrCreate", "FileOrCreate"} {
		if got, err := v.hostPath(reconciler.HostPath{Path: filepath.Join(allowed, "dangling"), Type: typ}); err == nil {
			t.Errorf("dangling symlink accepted (type %q) as %s", typ, got)
		}
	}
	if _, err := os.Stat("/nonexistent-kelpie-target"); !os.IsNotExist(err) {
		t.Errorf("a symlink's target outside the allow-list was created: %v", err)
	}
}
