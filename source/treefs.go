package source

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

var (
	// errIsDir is the error of reading a directory as a file.
	errIsDir = errors.New("is a directory")
	// errNotDir is the error of listing a file as a directory.
	errNotDir = errors.New("not a directory")
)

// FS returns a read-only file system over the tree of commit c, read straight
// from the object store: nothing is checked out and nothing is read until it
// is asked for. Only c.Hash is used.
//
// The file system implements fs.FS, fs.ReadDirFS, fs.ReadFileFS, fs.StatFS
// and fs.ReadLinkFS. Paths follow io/fs rules (unrooted, slash separated, "."
// is the root); errors are *fs.PathError wrapping fs.ErrNotExist,
// fs.ErrInvalid and the like. Directory entries are sorted by name.
//
// Modes are those of a checkout: regular files 0644, executables 0755,
// directories fs.ModeDir|0755. Symlinks have mode fs.ModeSymlink|0777 and are
// never followed: Open, ReadFile and Stat see the link itself, whose content
// is the link target (ReadLink returns it too). Submodules (gitlinks) have
// mode fs.ModeIrregular and size 0; their content is in another repository,
// so opening one succeeds but reading it fails with ErrSubmodule, which
// wraps fs.ErrNotExist. Every entry's modification time is the commit's
// author time.
//
// The file system is safe for concurrent use. Trees are cached per directory
// for the life of the file system; blobs are not cached.
func (r *Repo) FS(c Commit) (fs.FS, error) {
	if len(c.Hash) != 2*len(plumbing.ZeroHash) || !isHex(c.Hash) {
		return nil, fmt.Errorf("read commit %q: not a full hash", c.Hash)
	}
	h := plumbing.NewHash(strings.ToLower(c.Hash))

	r.mu.Lock()
	defer r.mu.Unlock()
	commit, err := object.GetCommit(r.repo.Storer, h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of commit %s: %w", h, err)
	}
	return &treeFS{
		repo:  r,
		mtime: commit.Author.When,
		dirs:  map[string]*treeDir{".": newTreeDir(tree)},
	}, nil
}

// treeFS is the fs.FS over one commit's tree.
type treeFS struct {
	repo  *Repo
	mtime time.Time
	dirs  map[string]*treeDir // by slash path; guarded by repo.mu
}

var (
	_ fs.ReadDirFS   = (*treeFS)(nil)
	_ fs.ReadFileFS  = (*treeFS)(nil)
	_ fs.StatFS      = (*treeFS)(nil)
	_ fs.ReadLinkFS  = (*treeFS)(nil)
	_ fs.ReadDirFile = (*openDir)(nil)
)

// treeDir is one decoded tree with its entries indexed by name.
type treeDir struct {
	byName map[string]object.TreeEntry
	sorted []object.TreeEntry // valid names only, sorted by name as io/fs wants
}

func newTreeDir(t *object.Tree) *treeDir {
	d := &treeDir{byName: make(map[string]object.TreeEntry, len(t.Entries))}
	for _, e := range t.Entries {
		// A hostile tree may hold names no checkout could produce; they
		// are not valid fs path elements, so they are left out.
		if !validName(e.Name) {
			continue
		}
		if _, dup := d.byName[e.Name]; dup {
			continue
		}
		d.byName[e.Name] = e
		d.sorted = append(d.sorted, e)
	}
	// Git sorts a directory "a" as "a/", after "a.b"; io/fs sorts by name.
	slices.SortFunc(d.sorted, func(a, b object.TreeEntry) int { return strings.Compare(a.Name, b.Name) })
	return d
}

func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// Open opens the named file or directory.
func (f *treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f.repo.mu.Lock()
	defer f.repo.mu.Unlock()
	e, err := f.lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	switch {
	case e.Mode == filemode.Dir:
		d, err := f.dir(name)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &openDir{fsys: f, path: name, info: f.newInfo(name, e, 0), entries: d.sorted}, nil
	case !e.Mode.IsFile():
		info := f.newInfo(name, e, 0)
		return &openFile{path: name, info: info, r: bytes.NewReader(nil), err: notAFile(e.Mode)}, nil
	}
	b, err := f.blob(e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return newOpenFile(name, f.newInfo(name, e, int64(len(b))), b), nil
}

// ReadFile reads the named file, or the target of the named symlink.
func (f *treeFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrInvalid}
	}
	f.repo.mu.Lock()
	defer f.repo.mu.Unlock()
	e, err := f.lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	switch {
	case e.Mode == filemode.Dir:
		return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	case !e.Mode.IsFile():
		return nil, &fs.PathError{Op: "read", Path: name, Err: notAFile(e.Mode)}
	}
	b, err := f.blob(e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return b, nil
}

// ReadDir reads the named directory, sorted by name.
func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	f.repo.mu.Lock()
	defer f.repo.mu.Unlock()
	d, err := f.dir(name)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return f.dirEntries(name, d.sorted), nil
}

// Stat describes the named file without following symlinks.
func (f *treeFS) Stat(name string) (fs.FileInfo, error) {
	return f.stat("stat", name)
}

// Lstat is Stat: this file system never follows symlinks.
func (f *treeFS) Lstat(name string) (fs.FileInfo, error) {
	return f.stat("lstat", name)
}

// ReadLink returns the target of the named symlink.
func (f *treeFS) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	f.repo.mu.Lock()
	defer f.repo.mu.Unlock()
	e, err := f.lookup(name)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	if e.Mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	b, err := f.blob(e.Hash)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(b), nil
}

func (f *treeFS) stat(op, name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	f.repo.mu.Lock()
	defer f.repo.mu.Unlock()
	e, err := f.lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	info, err := f.info(name, e)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return info, nil
}

// lookup finds the tree entry of a valid path; the root is a Dir entry with
// a zero hash. Callers hold repo.mu.
func (f *treeFS) lookup(name string) (object.TreeEntry, error) {
	if name == "." {
		return object.TreeEntry{Name: ".", Mode: filemode.Dir}, nil
	}
	parent, base := path.Split(name)
	if parent == "" {
		parent = "."
	} else {
		parent = parent[:len(parent)-1]
	}
	d, err := f.dir(parent)
	if errors.Is(err, errNotDir) {
		return object.TreeEntry{}, fs.ErrNotExist // a path through a file
	}
	if err != nil {
		return object.TreeEntry{}, err
	}
	e, ok := d.byName[base]
	if !ok {
		return object.TreeEntry{}, fs.ErrNotExist
	}
	return e, nil
}

// dir returns the decoded tree of a directory, from the cache or read and
// cached. A missing directory, or a path through a file, is fs.ErrNotExist;
// a file is errNotDir. Callers hold repo.mu.
func (f *treeFS) dir(name string) (*treeDir, error) {
	if d, ok := f.dirs[name]; ok {
		return d, nil
	}
	e, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if e.Mode != filemode.Dir {
		return nil, errNotDir
	}
	t, err := object.GetTree(f.repo.repo.Storer, e.Hash)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", e.Hash, err)
	}
	d := newTreeDir(t)
	f.dirs[name] = d
	return d, nil
}

// blob reads a whole blob. Callers hold repo.mu.
func (f *treeFS) blob(h plumbing.Hash) ([]byte, error) {
	o, err := f.repo.readObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	defer rd.Close()
	b := make([]byte, o.Size())
	if _, err := io.ReadFull(rd, b); err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return b, nil
}

// info describes an entry; the size of a blob is read from the object
// header, not its content. Callers hold repo.mu.
func (f *treeFS) info(name string, e object.TreeEntry) (*fileInfo, error) {
	var size int64
	if e.Mode.IsFile() {
		var err error
		if size, err = f.repo.objectSize(e.Hash); err != nil {
			return nil, fmt.Errorf("read size of blob %s: %w", e.Hash, err)
		}
	}
	return f.newInfo(name, e, size), nil
}

// newInfo describes an entry whose size is known (0 for all but blobs).
func (f *treeFS) newInfo(name string, e object.TreeEntry, size int64) *fileInfo {
	return &fileInfo{name: path.Base(name), mode: modeOf(e.Mode), size: size, mtime: f.mtime}
}

// modeOf maps a git file mode to the mode a checkout would have.
func modeOf(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Executable:
		return 0o755
	case filemode.Regular, filemode.Deprecated:
		return 0o644
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	default: // filemode.Submodule, or a mode git itself would reject
		return fs.ModeIrregular
	}
}

// notAFile is the error of reading an entry that is neither a file, a
// symlink nor a directory.
func notAFile(m filemode.FileMode) error {
	if m == filemode.Submodule {
		return ErrSubmodule
	}
	return fmt.Errorf("unsupported git file mode %s: %w", m, fs.ErrInvalid)
}
