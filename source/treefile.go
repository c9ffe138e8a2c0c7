package source

import (
	"bytes"
	"io"
	"io/fs"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// fileInfo describes one entry of a commit's tree.
type fileInfo struct {
	name  string
	mode  fs.FileMode
	size  int64
	mtime time.Time
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return nil }

// dirEntry is an entry of a directory listing; Info reads the blob size
// only when asked.
type dirEntry struct {
	fsys  *treeFS
	path  string // slash path of the entry from the root
	entry object.TreeEntry
}

func (d *dirEntry) Name() string               { return d.entry.Name }
func (d *dirEntry) IsDir() bool                { return d.Type().IsDir() }
func (d *dirEntry) Type() fs.FileMode          { return modeOf(d.entry.Mode).Type() }
func (d *dirEntry) String() string             { return fs.FormatDirEntry(d) }
func (d *dirEntry) Info() (fs.FileInfo, error) { return d.fsys.entryInfo(d.path, d.entry) }

// dirEntries wraps the entries of directory dir.
func (f *treeFS) dirEntries(dir string, entries []object.TreeEntry) []fs.DirEntry {
	prefix := ""
	if dir != "." {
		prefix = dir + "/"
	}
	out := make([]fs.DirEntry, len(entries))
	for i, e := range entries {
		out[i] = &dirEntry{fsys: f, path: prefix + e.Name, entry: e}
	}
	return out
}

// entryInfo is info for callers that do not hold repo.mu.
func (f *treeFS) entryInfo(name string, e object.TreeEntry) (fs.FileInfo, error) {
	f.repo.mu.Lock()
	defer f.repo.mu.Unlock()
	info, err := f.info(name, e)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return info, nil
}

// openFile is an open file or symlink, its content read whole at Open; or,
// with err set, an open submodule whose every read fails with err.
type openFile struct {
	path string
	info *fileInfo
	r    *bytes.Reader
	err  error
}

func newOpenFile(name string, info *fileInfo, b []byte) *openFile {
	return &openFile{path: name, info: info, r: bytes.NewReader(b)}
}

// Stat describes the file.
func (o *openFile) Stat() (fs.FileInfo, error) { return o.info, nil }

// Close does nothing: the content is in memory.
func (o *openFile) Close() error { return nil }

// Read reads the content.
func (o *openFile) Read(p []byte) (int, error) {
	if o.err != nil {
		return 0, &fs.PathError{Op: "read", Path: o.path, Err: o.err}
	}
	return o.r.Read(p)
}

// ReadAt reads the content at an offset.
func (o *openFile) ReadAt(p []byte, off int64) (int, error) {
	if o.err != nil {
		return 0, &fs.PathError{Op: "read", Path: o.path, Err: o.err}
	}
	return o.r.ReadAt(p, off)
}

// Seek sets the offset of the next Read.
func (o *openFile) Seek(offset int64, whence int) (int64, error) {
	if o.err != nil {
		return 0, &fs.PathError{Op: "seek", Path: o.path, Err: o.err}
	}
	return o.r.Seek(offset, whence)
}

// openDir is an open directory; its listing was taken at Open.
type openDir struct {
	fsys    *treeFS
	path    string
	info    *fileInfo
	entries []object.TreeEntry
	off     int
}

// Stat describes the directory.
func (d *openDir) Stat() (fs.FileInfo, error) { return d.info, nil }

// Close does nothing.
func (d *openDir) Close() error { return nil }

// Read fails: a directory has no content.
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errIsDir}
}

// ReadDir returns the next n entries, or all remaining ones for n <= 0, as
// fs.ReadDirFile specifies.
func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(n, len(rest))]
	}
	d.off += len(rest)
	return d.fsys.dirEntries(d.path, rest), nil
}
