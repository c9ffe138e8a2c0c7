// Package atomicfile replaces files durably and atomically: a reader, or a
// crash of the writer at any point, finds the old content or the new one,
// never a mix, a part or an empty file. It is the one way kelpie writes
// state, markers, refs and generated files.
//
// A write goes to a temporary file in the same directory (named
// TempPrefix+base+"-"+random, so it never matches a reader's pattern for
// the real files and never collides with another writer), which is
// written, synced, given its mode, renamed over the target, and the
// directory is synced, so that the rename survives a power cut too. A
// killed writer may leave its temporary file behind: later writes do not
// mind (each has its own name), and RemoveTemps clears them.
//
// It never creates directories, takes locks or serialises writers: two
// concurrent writers of one path each replace it whole, the last rename
// wins.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// TempPrefix starts the name of every temporary file this package makes.
const TempPrefix = ".tmp-"

// WriteFile replaces path with data, with permissions perm (exactly: the
// umask does not apply). The directory must exist.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path with what write writes, as WriteFile does, for
// content that is streamed rather than held in memory. When write fails,
// path is left as it was and its error is returned.
func Write(path string, perm os.FileMode, write func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, TempPrefix+base+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SyncDir flushes dir's entries to disk: what was renamed into it, created
// or removed in it survives a power cut once SyncDir returns.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// IsTemp reports whether name (a base name) is a temporary file of this
// package.
func IsTemp(name string) bool { return strings.HasPrefix(name, TempPrefix) }

// RemoveTemps removes the temporary files that killed writers left in
// dir. Call it only when no write into dir can be under way (at start):
// it would remove a live writer's file and make its rename fail.
func RemoveTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if IsTemp(e.Name()) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
