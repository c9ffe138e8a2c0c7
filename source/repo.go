package source

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
)

// maxOpenPacks bounds the pack files a Repo keeps open. go-git's default is
// to reopen the pack for every object read, which made reading a 500-file
// commit three times slower; a repository repacked now and then has a
// handful of packs.
const maxOpenPacks = 16

// Repo is a local git repository (bare or with a work tree) opened with
// go-git.
//
// A Repo and the file systems it returns are safe for concurrent use. go-git's
// filesystem object store is not, so every access to it is serialised by one
// mutex per Repo. A Repo lists the repository's packs when it first needs
// them: open a new one after the repository was repacked or fetched into by
// another process.
type Repo struct {
	mu      sync.Mutex // guards repo, storage and everything read through them
	repo    *git.Repository
	storage *filesystem.Storage
	objects cache.Object // the storage's object cache, consulted first (see readObject)
	root    string       // absolute work-tree root; "" when bare
}

// OpenLocal opens the repository containing path. path may be the root of a
// work tree, any directory inside one (a .git directory or .git file is
// looked for upwards, as git does), a bare repository or a directory inside
// one. A path to a file starts the search in the file's directory.
//
// Linked work trees (git worktree add) and submodules are found through
// their .git file, and the main repository through commondir.
func OpenLocal(path string) (*Repo, error) {
	r, err := openLocal(path)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", path, err)
	}
	return r, nil
}

func openLocal(path string) (*Repo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		abs = filepath.Dir(abs)
	}
	root, gitDir, err := discover(abs)
	if err != nil {
		return nil, err
	}
	return openGitDir(root, gitDir)
}

// openGitDir opens the git directory gitDir, whose work tree is root (""
// when bare), with the storage options every Repo uses.
func openGitDir(root, gitDir string) (*Repo, error) {
	var dot billy.Filesystem = osfs.New(gitDir)
	if common := commonDir(gitDir); common != "" {
		dot = dotgit.NewRepositoryFilesystem(dot, osfs.New(common))
	}
	objects := cache.NewObjectLRUDefault()
	st := filesystem.NewStorageWithOptions(dot, objects,
		filesystem.Options{MaxOpenDescriptors: maxOpenPacks})
	var wt billy.Filesystem
	if root != "" {
		wt = osfs.New(root)
	}
	repo, err := git.Open(st, wt)
	if err != nil {
		_ = st.Close()
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return nil, fmt.Errorf("%s: %w", gitDir, ErrNotRepository)
		}
		return nil, fmt.Errorf("%s: %w", gitDir, err)
	}
	return &Repo{repo: repo, storage: st, objects: objects, root: root}, nil
}

// readObject reads an object, from the object cache when it is there: go-git
// opens a loose object's file before it looks in the cache. Callers hold mu.
func (r *Repo) readObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, ok := r.objects.Get(h); ok && (t == plumbing.AnyObject || o.Type() == t) {
		return o, nil
	}
	return r.storage.EncodedObject(t, h)
}

// objectSize returns an object's size from the cache or the object header.
// Callers hold mu.
func (r *Repo) objectSize(h plumbing.Hash) (int64, error) {
	if o, ok := r.objects.Get(h); ok {
		return o.Size(), nil
	}
	return r.storage.EncodedObjectSize(h)
}

// Root returns the absolute work-tree root, or "" for a bare repository.
func (r *Repo) Root() string { return r.root }

// Close releases the pack files the Repo keeps open. Neither the Repo nor
// its file systems may be used afterwards. A process that exits need not
// call it.
func (r *Repo) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.storage.Close(); err != nil {
		return fmt.Errorf("close repository: %w", err)
	}
	return nil
}

// discover walks from dir up to the file system root looking for a
// repository, in git's order: at each level first a .git directory or .git
// file (a work tree), then the directory itself as a bare repository. It
// returns the work-tree root ("" when bare) and the git directory.
func discover(dir string) (root, gitDir string, err error) {
	for d := dir; ; {
		dotGit := filepath.Join(d, ".git")
		if fi, err := os.Stat(dotGit); err == nil {
			switch {
			case fi.IsDir() && isGitDir(dotGit):
				return d, dotGit, nil
			case fi.Mode().IsRegular():
				gitDir, err := readGitFile(dotGit)
				if err != nil {
					return "", "", err
				}
				return d, gitDir, nil
			}
		}
		if isGitDir(d) {
			return "", d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", "", ErrNotRepository
		}
		d = parent
	}
}

// readGitFile reads a .git file ("gitdir: PATH") of a linked work tree or a
// submodule; a relative PATH is relative to the file's directory.
func readGitFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	dir, ok := strings.CutPrefix(strings.TrimSpace(line), "gitdir: ")
	if !ok || dir == "" {
		return "", fmt.Errorf("%s: no \"gitdir: \" line", name)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(name), dir)
	}
	if !isGitDir(dir) {
		return "", fmt.Errorf("%s points to %s: %w", name, dir, ErrNotRepository)
	}
	return dir, nil
}

// isGitDir reports whether dir looks like a git directory, with git's own
// test: a HEAD file plus objects/ and refs/ directories, which a linked work
// tree's git directory finds through its commondir file.
func isGitDir(dir string) bool {
	if fi, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	common := commonDir(dir)
	if common == "" {
		common = dir
	}
	for _, sub := range []string{"objects", "refs"} {
		if fi, err := os.Stat(filepath.Join(common, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// commonDir returns the directory named by gitDir/commondir, the shared part
// of a linked work tree's repository, or "" if there is none.
func commonDir(gitDir string) string {
	b, err := os.ReadFile(filepath.Join(gitDir, "commondir"))
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(b))
	if c == "" {
		return ""
	}
	if !filepath.IsAbs(c) {
		c = filepath.Join(gitDir, c)
	}
	return c
}
