package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// virtualRoot is where the repository appears in kustomize's absolute paths.
// A path kustomize cleans to above it (a ../ too many) lands outside and is
// refused.
const virtualRoot = "/kelpie-repository"

// maxLinkHops bounds how many symlinks one path may follow.
const maxLinkHops = 40

var (
	// errReadOnly is the error of every write kustomize attempts.
	errReadOnly = errors.New("the repository is read-only to kustomize")
	// errOutside is the error of a path that leads out of the repository.
	errOutside = errors.New("leads outside the repository")
)

// repoFS is kustomize's view of a repository: filesys.FileSystem over an
// fs.FS, read-only. It is used by one build on one goroutine.
type repoFS struct {
	fsys   fs.FS
	limits Options
	// rootKust is the fs path of the kustomization being built: its content
	// gains buildMetadata: [originAnnotations] as it is read.
	rootKust string
	// reads counts files read, against limits.MaxFiles.
	reads int
	// refused is the first kustomization entry refused (remote, helm,
	// plugin), escaped the first path that led out of the repository, and
	// limit the first limit exceeded: reported when the build fails.
	refused *Error
	escaped string
	limit   error
	// kustTexts are the kustomization files read, by fs path, to place
	// kustomize's own errors.
	kustTexts map[string][]byte
}

var _ filesys.FileSystem = (*repoFS)(nil)

// fsPath resolves a kustomize path to a path in the fs.FS, following the
// symlinks of the fs.FS (when it has them) and refusing any that leads out.
func (r *repoFS) fsPath(name string) (string, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(virtualRoot, name)
	}
	name = filepath.ToSlash(filepath.Clean(name))
	if name == virtualRoot {
		return ".", nil
	}
	rel, ok := strings.CutPrefix(name, virtualRoot+"/")
	if !ok {
		r.noteEscape(name)
		return "", &fs.PathError{Op: "open", Path: name, Err: errOutside}
	}
	p, err := r.follow(rel)
	if errors.Is(err, errOutside) {
		r.noteEscape(rel)
	}
	return p, err
}

// noteEscape records the first path that led out of the repository.
func (r *repoFS) noteEscape(p string) {
	if r.escaped == "" {
		r.escaped = p
	}
}

// follow resolves the symlinks along rel, a clean relative path, keeping
// every step inside the file system.
func (r *repoFS) follow(rel string) (string, error) {
	lfs, ok := r.fsys.(fs.ReadLinkFS)
	if !ok {
		return rel, nil
	}
	rest := strings.Split(rel, "/")
	cur := "."
	for hops := 0; len(rest) > 0; {
		next := path.Join(cur, rest[0])
		rest = rest[1:]
		info, err := lfs.Lstat(next)
		if err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", &fs.PathError{Op: "open", Path: rel, Err: errors.New("too many symlinks")}
		}
		target, err := lfs.ReadLink(next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			return "", &fs.PathError{Op: "open", Path: rel, Err: errOutside}
		}
		joined := path.Join(cur, target)
		if joined == ".." || strings.HasPrefix(joined, "../") {
			return "", &fs.PathError{Op: "open", Path: rel, Err: errOutside}
		}
		rest = append(strings.Split(joined, "/"), rest...)
		cur = "."
	}
	return cur, nil
}

// virtual is the kustomize path of an fs path.
func virtual(p string) string {
	if p == "." {
		return virtualRoot
	}
	return virtualRoot + "/" + p
}

// Create refuses: the repository is read-only.
func (r *repoFS) Create(string) (filesys.File, error) { return nil, errReadOnly }

// Mkdir refuses: the repository is read-only.
func (r *repoFS) Mkdir(string) error { return errReadOnly }

// MkdirAll refuses: the repository is read-only.
func (r *repoFS) MkdirAll(string) error { return errReadOnly }

// RemoveAll refuses: the repository is read-only.
func (r *repoFS) RemoveAll(string) error { return errReadOnly }

// WriteFile refuses: the repository is read-only.
func (r *repoFS) WriteFile(string, []byte) error { return errReadOnly }

// Open opens a file for reading; its content is read at once, within the
// limits.
func (r *repoFS) Open(name string) (filesys.File, error) {
	data, err := r.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(data), name: path.Base(name), size: int64(len(data))}, nil
}

// IsDir reports whether name is a directory.
func (r *repoFS) IsDir(name string) bool {
	info, err := r.stat(name)
	return err == nil && info.IsDir()
}

// Exists reports whether name exists.
func (r *repoFS) Exists(name string) bool {
	_, err := r.stat(name)
	return err == nil
}

// stat resolves and stats name.
func (r *repoFS) stat(name string) (fs.FileInfo, error) {
	p, err := r.fsPath(name)
	if err != nil {
		return nil, err
	}
	return fs.Stat(r.fsys, p)
}

// ReadDir lists the names in a directory.
func (r *repoFS) ReadDir(name string) ([]string, error) {
	p, err := r.fsPath(name)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(r.fsys, p)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// CleanedAbs splits a path into its directory, resolved and absolute, and
// its file name ("" when the path is a directory).
func (r *repoFS) CleanedAbs(name string) (filesys.ConfirmedDir, string, error) {
	p, err := r.fsPath(name)
	if err != nil {
		return "", "", err
	}
	info, err := fs.Stat(r.fsys, p)
	if err != nil {
		return "", "", err
	}
	if info.IsDir() {
		return filesys.ConfirmedDir(virtual(p)), "", nil
	}
	return filesys.ConfirmedDir(virtual(path.Dir(p))), path.Base(p), nil
}

// Glob returns the files matching pattern.
func (r *repoFS) Glob(pattern string) ([]string, error) {
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(virtualRoot, pattern)
	}
	rel, ok := strings.CutPrefix(filepath.ToSlash(pattern), virtualRoot+"/")
	if !ok {
		return nil, fmt.Errorf("glob %s: %w", pattern, errOutside)
	}
	matches, err := fs.Glob(r.fsys, rel)
	if err != nil {
		return nil, err
	}
	for i, m := range matches {
		matches[i] = virtual(m)
	}
	return matches, nil
}

// Walk walks the tree at name in lexical order.
func (r *repoFS) Walk(name string, walkFn filepath.WalkFunc) error {
	p, err := r.fsPath(name)
	if err != nil {
		return walkFn(name, nil, err)
	}
	return fs.WalkDir(r.fsys, p, func(q string, d fs.DirEntry, err error) error {
		var info fs.FileInfo
		if err == nil {
			info, err = d.Info()
		}
		return walkFn(virtual(q), info, err)
	})
}

// ReadFile reads a file within the limits. A kustomization's content is
// checked for what kelpie refuses before kustomize sees it, and the root
// kustomization gains the origin annotations.
func (r *repoFS) ReadFile(name string) ([]byte, error) {
	p, err := r.fsPath(name)
	if err != nil {
		return nil, err
	}
	info, err := fs.Stat(r.fsys, p)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	if r.reads++; r.reads > r.limits.MaxFiles {
		r.noteLimit(fmt.Errorf("the kustomization reads more than %d files; refused", r.limits.MaxFiles))
		return nil, r.limit
	}
	data, err := readLimited(r.fsys, p, r.limits.MaxFileBytes)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			r.noteLimit(fmt.Errorf("%s: %w", p, err))
		}
		return nil, err
	}
	if !slices.Contains(FileNames, path.Base(p)) {
		return data, nil
	}
	if r.kustTexts == nil {
		r.kustTexts = map[string][]byte{}
	}
	r.kustTexts[p] = data
	if e := refusals(p, data); e != nil {
		if r.refused == nil {
			r.refused = e
		}
		return nil, e
	}
	if p == r.rootKust {
		return withOriginAnnotations(data)
	}
	return data, nil
}

// noteLimit records the first limit exceeded.
func (r *repoFS) noteLimit(err error) {
	if r.limit == nil {
		r.limit = err
	}
}

// errTooLarge is the error of a file over the size limit.
var errTooLarge = errors.New("file is larger than the limit")

// readLimited reads a file, refusing one larger than max bytes without
// reading past the limit.
func readLimited(fsys fs.FS, p string, max int64) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w of %d bytes; refused", errTooLarge, max)
	}
	return data, nil
}

// memFile is a file read whole, for Open.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

// Write refuses: the repository is read-only.
func (f *memFile) Write([]byte) (int, error) { return 0, errReadOnly }

// Close does nothing.
func (f *memFile) Close() error { return nil }

// Stat describes the file.
func (f *memFile) Stat() (os.FileInfo, error) { return memInfo{f}, nil }

// memInfo is the os.FileInfo of a memFile.
type memInfo struct{ f *memFile }

func (i memInfo) Name() string       { return i.f.name }
func (i memInfo) Size() int64        { return i.f.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
