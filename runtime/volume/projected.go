package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// Projected volumes (ConfigMap and Secret) are written as the kubelet's
// AtomicWriter writes them, so that a container never sees half an update:
//
//	VOL/..v-RANDOM/KEY     the files of one version
//	VOL/..data -> ..v-RANDOM
//	VOL/KEY -> ..data/KEY  one symlink per top-level entry
//
// A new version is written to a fresh ..v- directory and published by
// renaming a new ..data symlink over the old one, a single atomic step;
// then the top-level symlinks are fixed and old versions removed. Secret
// volumes are a tmpfs, so their content never reaches the disk.
const (
	projDataLink    = "..data"
	projDataTmpLink = "..data_tmp"
	projVersionPfx  = "..v-"
	projLinkTmpPfx  = "..link-tmp-" // keys never start with "..", so this never collides
	projDirMode     = 0o755
	projSecretMode  = 0o400 // a Secret file's mode when the resolver gave none
	projConfigMode  = 0o644 // a ConfigMap file's mode when the resolver gave none
	projTmpfsMode   = 0o755 // the root of a Secret volume's tmpfs
)

// prepareProjected projects pr's files into the volume dir path, on a tmpfs
// for a Secret. Content that is already there is left alone. File data is
// never put in an error or a log.
//
// Every operation below path goes through an os.Root opened on it: a link
// planted in the volume (by a container of an older kelpie, which mounted
// these volumes read-write, or by anything else) is never followed out of
// the volume, and files are created exclusively and changed through their
// own descriptors, never by name.
func prepareProjected(path string, pr reconciler.Projected, fsGroup *int64) error {
	for _, f := range pr.Files {
		if err := checkProjectedPath(f.Path); err != nil {
			return err
		}
	}
	if pr.Secret {
		if err := mountTmpfs(path, projTmpfsMode, 0); err != nil {
			return err
		}
	}
	if err := os.Chmod(path, projDirMode); err != nil {
		return err
	}
	vol, err := os.OpenRoot(path)
	if err != nil {
		return err
	}
	defer vol.Close()
	current, _ := vol.Readlink(projDataLink)
	same, err := projectedMatches(vol, current, pr, fsGroup)
	if err != nil {
		return err
	}
	if !same {
		version, err := writeProjectedVersion(vol, pr, fsGroup)
		if err != nil {
			return err
		}
		_ = vol.RemoveAll(projDataTmpLink)
		if err := vol.Symlink(version, projDataTmpLink); err != nil {
			return fmt.Errorf("publish projected files: %w", err)
		}
		if err := vol.Rename(projDataTmpLink, projDataLink); err != nil {
			return fmt.Errorf("publish projected files: %w", err)
		}
		current = version
	}
	if err := linkProjectedEntries(vol, pr); err != nil {
		return err
	}
	// Old versions and leftovers of interrupted updates.
	entries, err := readDir(vol)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if (strings.HasPrefix(n, projVersionPfx) && n != current) || n == projDataTmpLink || strings.HasPrefix(n, projLinkTmpPfx) {
			if err := vol.RemoveAll(n); err != nil {
				return fmt.Errorf("remove old projected files: %w", err)
			}
		}
	}
	return nil
}

// readDir lists the entries of root's directory, without following any
// of them.
func readDir(root *os.Root) ([]fs.DirEntry, error) {
	d, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

// checkProjectedPath rejects a file path that could leave the volume or
// collide with the writer's own names.
func checkProjectedPath(p string) error {
	bad := func(why string) error {
		return fmt.Errorf("projected file path %q: %s: %w", p, why, errdefs.ErrInvalidArgument)
	}
	switch {
	case p == "":
		return bad("empty")
	case filepath.IsAbs(p):
		return bad("absolute")
	case filepath.Clean(p) != p:
		return bad("not clean")
	case strings.HasPrefix(p, ".."):
		return bad("starts with '..'")
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." || el == "." {
			return bad("has a '..' or '.' element")
		}
	}
	return nil
}

// projectedMode is the mode a projected file is written with: its own, or
// the kind's default, plus group read for the pod's fsGroup.
func projectedMode(f reconciler.File, secret bool, fsGroup *int64) os.FileMode {
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = projConfigMode
		if secret {
			mode = projSecretMode
		}
	}
	if fsGroup != nil {
		mode |= 0o440
	}
	return mode
}

// projectedMatches reports whether the version dir named version of the
// volume vol holds exactly pr's files, with their data and modes. A
// version dir holding anything else (a symlink, a device) does not match.
func projectedMatches(vol *os.Root, version string, pr reconciler.Projected, fsGroup *int64) (bool, error) {
	if !strings.HasPrefix(version, projVersionPfx) || strings.Contains(version, "/") {
		return false, nil
	}
	if fi, err := vol.Lstat(version); err != nil || !fi.IsDir() {
		return false, nil
	}
	root, err := vol.OpenRoot(version)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read projected files: %w", err)
	}
	defer root.Close()
	want := make(map[string]reconciler.File, len(pr.Files))
	for _, f := range pr.Files {
		want[f.Path] = f
	}
	seen := 0
	same := true
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, ok := want[p]
		if !ok || !d.Type().IsRegular() {
			same = false
			return fs.SkipAll
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != projectedMode(f, pr.Secret, fsGroup) || fi.Size() != int64(len(f.Data)) {
			same = false
			return fs.SkipAll
		}
		data, err := root.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, f.Data) {
			same = false
			return fs.SkipAll
		}
		seen++
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read projected files: %w", err)
	}
	return same && seen == len(want), nil
}

// writeProjectedVersion writes pr's files into a new version dir of the
// volume vol and returns its name. Every file is created exclusively (an
// existing name, a planted link included, fails the write) and its mode
// and group are set through its descriptor.
func writeProjectedVersion(vol *os.Root, pr reconciler.Projected, fsGroup *int64) (string, error) {
	version := projVersionPfx + statedir.Random()
	if err := vol.Mkdir(version, projDirMode); err != nil {
		return "", fmt.Errorf("write projected files: %w", err)
	}
	root, err := vol.OpenRoot(version)
	if err != nil {
		return "", fmt.Errorf("write projected files: %w", err)
	}
	defer root.Close()
	for _, f := range pr.Files {
		if err := writeProjectedFile(root, f, projectedMode(f, pr.Secret, fsGroup), fsGroup); err != nil {
			return "", fmt.Errorf("write projected file %s: %w", f.Path, err)
		}
	}
	if !pr.Secret { // a tmpfs needs no sync; a crash before this only costs a rewrite
		if err := syncTree(root); err != nil {
			return "", fmt.Errorf("write projected files: %w", err)
		}
	}
	return version, nil
}

// writeProjectedFile creates f in root with mode, group-owned by fsGroup
// when set.
func writeProjectedFile(root *os.Root, f reconciler.File, mode os.FileMode, fsGroup *int64) error {
	if dir := filepath.Dir(f.Path); dir != "." {
		if err := root.MkdirAll(dir, projDirMode); err != nil {
			return err
		}
	}
	out, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	_, err = out.Write(f.Data)
	if err == nil {
		err = out.Chmod(mode) // the mode OpenFile gave is subject to the umask
	}
	if err == nil && fsGroup != nil {
		if err = out.Chown(-1, int(*fsGroup)); err != nil {
			err = fmt.Errorf("fsGroup %d: %w", *fsGroup, err)
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// linkProjectedEntries makes a symlink KEY -> ..data/KEY in the volume vol
// for every top-level entry of pr's files, and removes symlinks to entries
// that are gone. Each symlink is replaced atomically.
func linkProjectedEntries(vol *os.Root, pr reconciler.Projected) error {
	want := map[string]bool{}
	for _, f := range pr.Files {
		top, _, _ := strings.Cut(f.Path, "/")
		want[top] = true
	}
	for top := range want {
		target := projDataLink + "/" + top
		if have, err := vol.Readlink(top); err == nil && have == target {
			continue
		}
		tmp := projLinkTmpPfx + top
		_ = vol.RemoveAll(tmp)
		if err := vol.Symlink(target, tmp); err != nil {
			return fmt.Errorf("link projected file %s: %w", top, err)
		}
		if err := vol.Rename(tmp, top); err != nil {
			return fmt.Errorf("link projected file %s: %w", top, err)
		}
	}
	entries, err := readDir(vol)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") || want[name] {
			continue
		}
		// Only what the writer made: symlinks into ..data and its temporaries.
		target, err := vol.Readlink(name)
		if err == nil && strings.HasPrefix(target, projDataLink+"/") {
			if err := vol.Remove(name); err != nil {
				return fmt.Errorf("unlink projected file %s: %w", name, err)
			}
		}
	}
	return nil
}

// syncTree syncs every file and directory under root to disk.
func syncTree(root *os.Root) error {
	return fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		f, err := root.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
