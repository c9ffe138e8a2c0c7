package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
	current, _ := os.Readlink(filepath.Join(path, projDataLink))
	same, err := projectedMatches(path, current, pr, fsGroup)
	if err != nil {
		return err
	}
	if !same {
		version, err := writeProjectedVersion(path, pr, fsGroup)
		if err != nil {
			return err
		}
		tmp := filepath.Join(path, projDataTmpLink)
		_ = os.Remove(tmp)
		if err := os.Symlink(version, tmp); err != nil {
			return fmt.Errorf("publish projected files: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(path, projDataLink)); err != nil {
			return fmt.Errorf("publish projected files: %w", err)
		}
		current = version
	}
	if err := linkProjectedEntries(path, pr); err != nil {
		return err
	}
	// Old versions and leftovers of interrupted updates.
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if (strings.HasPrefix(n, projVersionPfx) && n != current) || n == projDataTmpLink || strings.HasPrefix(n, projLinkTmpPfx) {
			if err := os.RemoveAll(filepath.Join(path, e.Name())); err != nil {
				return fmt.Errorf("remove old projected files: %w", err)
			}
		}
	}
	return nil
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

// projectedMatches reports whether the version dir named version holds
// exactly pr's files, with their data and modes.
func projectedMatches(path, version string, pr reconciler.Projected, fsGroup *int64) (bool, error) {
	if !strings.HasPrefix(version, projVersionPfx) || strings.Contains(version, "/") {
		return false, nil
	}
	root := filepath.Join(path, version)
	want := make(map[string]reconciler.File, len(pr.Files))
	for _, f := range pr.Files {
		want[f.Path] = f
	}
	seen := 0
	same := true
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		f, ok := want[rel]
		if !ok || !d.Type().IsRegular() {
			same = false
			return filepath.SkipAll
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != projectedMode(f, pr.Secret, fsGroup) || fi.Size() != int64(len(f.Data)) {
			same = false
			return filepath.SkipAll
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, f.Data) {
			same = false
			return filepath.SkipAll
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

// writeProjectedVersion writes pr's files into a new version dir of path
// and returns its name.
func writeProjectedVersion(path string, pr reconciler.Projected, fsGroup *int64) (string, error) {
	version := projVersionPfx + statedir.Random()
	root := filepath.Join(path, version)
	if err := os.Mkdir(root, projDirMode); err != nil {
		return "", fmt.Errorf("write projected files: %w", err)
	}
	for _, f := range pr.Files {
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), projDirMode); err != nil {
			return "", fmt.Errorf("write projected file %s: %w", f.Path, err)
		}
		mode := projectedMode(f, pr.Secret, fsGroup)
		if err := os.WriteFile(p, f.Data, mode); err != nil {
			return "", fmt.Errorf("write projected file %s: %w", f.Path, err)
		}
		if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to the umask
			return "", fmt.Errorf("write projected file %s: %w", f.Path, err)
		}
		if fsGroup != nil {
			if err := os.Lchown(p, -1, int(*fsGroup)); err != nil {
				return "", fmt.Errorf("write projected file %s: fsGroup %d: %w", f.Path, *fsGroup, err)
			}
		}
	}
	if !pr.Secret { // a tmpfs needs no sync; a crash before this only costs a rewrite
		if err := syncTree(root); err != nil {
			return "", fmt.Errorf("write projected files: %w", err)
		}
	}
	return version, nil
}

// linkProjectedEntries makes a symlink KEY -> ..data/KEY for every
// top-level entry of pr's files, and removes symlinks to entries that are
// gone. Each symlink is replaced atomically.
func linkProjectedEntries(path string, pr reconciler.Projected) error {
	want := map[string]bool{}
	for _, f := range pr.Files {
		top, _, _ := strings.Cut(f.Path, "/")
		want[top] = true
	}
	for top := range want {
		link := filepath.Join(path, top)
		target := projDataLink + "/" + top
		if have, err := os.Readlink(link); err == nil && have == target {
			continue
		}
		tmp := filepath.Join(path, projLinkTmpPfx+top)
		_ = os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("link projected file %s: %w", top, err)
		}
		if err := os.Rename(tmp, link); err != nil {
			return fmt.Errorf("link projected file %s: %w", top, err)
		}
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") || want[name] {
			continue
		}
		// Only what the writer made: symlinks into ..data and its temporaries.
		target, err := os.Readlink(filepath.Join(path, name))
		if err == nil && strings.HasPrefix(target, projDataLink+"/") {
			if err := os.Remove(filepath.Join(path, name)); err != nil {
				return fmt.Errorf("unlink projected file %s: %w", name, err)
			}
		}
	}
	return nil
}

// syncTree syncs every file and directory under root to disk.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
