package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
)

// Importing a bundle: staged into a quarantine repository, checked against
// the receiving one, then committed into it (packs first, refs last).

// RefUpdate is what an import does to one ref of the receiving repository.
type RefUpdate struct {
	Name string `json:"name"`
	Old  string `json:"old,omitempty"` // "" when the ref is new
	New  string `json:"new"`
	// Forced is set when New does not descend from Old and the update was
	// accepted only because it was forced.
	Forced bool `json:"forced,omitempty"`
}

// BundleCheck says what StagedBundle.Check demands beyond integrity.
type BundleCheck struct {
	// Force accepts refs that do not descend from what the repository
	// has (a history rewrite, a forked or older bundle).
	Force bool
	// VerifyKeysFile holds armored OpenPGP public keys: when set, the
	// commit of every ref must be signed by one of them.
	VerifyKeysFile string
}

// StagedBundle is a bundle whose objects are indexed into a quarantine
// repository next to a bare repository, and not yet visible in it. Check
// validates it against the repository, Commit moves it in, Close discards
// what is left. The repository is not touched before Commit.
//
// A StagedBundle is not safe for concurrent use; the caller also makes sure
// that no one else updates the repository between staging and Commit.
type StagedBundle struct {
	gitDir  string // the receiving bare repository; need not exist yet
	staging string // quarantine: a bare repository of its own
	header  BundleHeader
	packed  bool // the bundle's pack held objects

	stage  *Repo // the quarantine
	target *Repo // the receiving repository; nil when it does not exist
	both   layeredStorer
	checks []RefUpdate // filled by Check
}

// StageBundle reads a whole bundle from r (its header, then its pack) into
// a new bare repository at staging, which must not exist, and returns it
// ready for Check. gitDir is the bare repository it is meant for; when it
// does not exist the bundle must be complete (no prerequisites). On success
// it has read r to its end; on failure it may stop early.
func StageBundle(gitDir, staging string, r io.Reader) (*StagedBundle, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	hdr, err := ReadBundleHeader(br)
	if err != nil {
		return nil, err
	}
	s := &StagedBundle{gitDir: gitDir, staging: staging, header: hdr}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if isGitDir(gitDir) {
		if s.target, err = openGitDir("", gitDir); err != nil {
			return nil, fmt.Errorf("open repository %s: %w", gitDir, err)
		}
	} else if _, err := os.Stat(gitDir); err == nil {
		return nil, fmt.Errorf("%s exists and is not a git repository", gitDir)
	}
	// Prerequisites are checked before the pack is read: a bundle for
	// another basis fails at once.
	for _, p := range hdr.Prerequisites {
		if s.target == nil || s.target.repo.Storer.HasEncodedObject(plumbing.NewHash(p)) != nil {
			_, _ = io.Copy(io.Discard, br)
			return nil, fmt.Errorf("%w: the bundle builds on commit %s, which %s lacks (import the bundle it was made after first)",
				ErrMissingPrerequisite, p, gitDir)
		}
	}
	if _, err := git.PlainInit(staging, true); err != nil {
		return nil, fmt.Errorf("create staging repository %s: %w", staging, err)
	}
	if s.stage, err = openGitDir("", staging); err != nil {
		return nil, fmt.Errorf("open staging repository %s: %w", staging, err)
	}
	// The pack reaches go-git only through the guard of its sizes.
	guard := newGuardedReader(br, defaultPackLimits)
	defer guard.close()
	cr := &countReader{r: guard}
	err = packfile.UpdateObjectStorage(s.stage.repo.Storer, cr)
	switch {
	case errors.Is(err, packfile.ErrEmptyPackfile) && cr.n == 0:
		return nil, fmt.Errorf("%w: no pack after the header", ErrBundle)
	case errors.Is(err, packfile.ErrEmptyPackfile):
		// A pack with no objects: nothing new, only refs.
	case err != nil:
		_, _ = io.Copy(io.Discard, br)
		return nil, fmt.Errorf("%w: pack: %w", ErrBundle, err)
	default:
		s.packed = true
	}
	if n, _ := io.Copy(io.Discard, br); n > 0 {
		return nil, fmt.Errorf("%w: %d bytes after the pack", ErrBundle, n)
	}
	// Reopen: the storage lists its packs once.
	_ = s.stage.Close()
	if s.stage, err = openGitDir("", staging); err != nil {
		return nil, fmt.Errorf("open staging repository %s: %w", staging, err)
	}
	s.both = layeredStorer{EncodedObjectStorer: s.stage.repo.Storer}
	if s.target != nil {
		s.both.base = s.target.repo.Storer
	}
	ok = true
	return s, nil
}

// Header returns the bundle's header.
func (s *StagedBundle) Header() BundleHeader { return s.header }

// ReadFile returns the content of the file at path name (slash separated,
// from the root) in the tree of the commit that ref, one of the bundle's
// refs, points at or peels to, read from the bundle and the repository. A
// missing file gives an error wrapping fs.ErrNotExist; a file larger than
// limit bytes is an error. After a Check with VerifyKeysFile, the content
// is what a trusted key signed (through the commit's tree).
func (s *StagedBundle) ReadFile(ref, name string, limit int64) ([]byte, error) {
	var h plumbing.Hash
	for _, r := range s.header.Refs {
		if r.Name == ref {
			h = plumbing.NewHash(r.Commit)
		}
	}
	if h.IsZero() {
		return nil, fmt.Errorf("read %s at %s: the bundle carries no such ref", name, ref)
	}
	c, err := peelToCommit(s.both, h)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", name, ref, err)
	}
	commit, err := object.GetCommit(s.both, c)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", name, ref, err)
	}
	f, err := commit.File(name)
	if errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
		return nil, fmt.Errorf("read %s at %s (%s): %w", name, ref, short(c), fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s at %s (%s): %w", name, ref, short(c), err)
	}
	if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
		return nil, fmt.Errorf("read %s at %s (%s): not a regular file", name, ref, short(c))
	}
	if f.Size > limit {
		return nil, fmt.Errorf("read %s at %s (%s): %d bytes, more than %d", name, ref, short(c), f.Size, limit)
	}
	text, err := f.Contents()
	if err != nil {
		return nil, fmt.Errorf("read %s at %s (%s): %w", name, ref, short(c), err)
	}
	return []byte(text), nil
}

// Check validates the staged bundle against the repository and returns the
// ref updates Commit would make: every object the refs reach is in the
// bundle or the repository; each ref that exists in the repository moves
// only forward (its new commit descends from the old one) unless
// check.Force; with check.VerifyKeysFile, each ref's commit carries a
// trusted signature. Refusals wrap ErrNotFastForward, ErrUntrusted or
// ErrBundle.
func (s *StagedBundle) Check(check BundleCheck) ([]RefUpdate, error) {
	var keys *keyring
	if check.VerifyKeysFile != "" {
		k, err := loadKeyring(check.VerifyKeysFile)
		if err != nil {
			return nil, fmt.Errorf("verify keys: %w", err)
		}
		keys = k
	}
	if err := s.checkConnected(); err != nil {
		return nil, err
	}
	var updates []RefUpdate
	for _, ref := range s.header.Refs {
		h := plumbing.NewHash(ref.Commit)
		newCommit, err := peelToCommit(s.both, h)
		if err != nil {
			return nil, fmt.Errorf("%w: ref %s: %w", ErrBundle, ref.Name, err)
		}
		u := RefUpdate{Name: ref.Name, New: ref.Commit}
		if s.target != nil {
			if old, err := s.target.repo.Storer.Reference(plumbing.ReferenceName(ref.Name)); err == nil && old.Type() == plumbing.HashReference {
				u.Old = old.Hash().String()
			}
		}
		if u.Old != "" && u.Old != u.New {
			oldCommit, err := peelToCommit(s.both, plumbing.NewHash(u.Old))
			ff := false
			if err == nil {
				ff, err = isAncestorIn(s.both, oldCommit, newCommit)
				if err != nil {
					return nil, fmt.Errorf("ref %s: check ancestry: %w", ref.Name, err)
				}
			}
			if strings.HasPrefix(ref.Name, "refs/tags/") {
				ff = false // a tag never moves by itself
			}
			if !ff {
				if !check.Force {
					return nil, fmt.Errorf("%w: ref %s: bundle's %s does not descend from the mirror's %s "+
						"(history rewritten, or an older or forked bundle; --force accepts it)",
						ErrNotFastForward, ref.Name, short(plumbing.NewHash(u.New)), short(plumbing.NewHash(u.Old)))
				}
				u.Forced = true
			}
		}
		if keys != nil {
			c, err := object.GetCommit(s.both, newCommit)
			if err != nil {
				return nil, fmt.Errorf("ref %s: read commit %s: %w", ref.Name, newCommit, err)
			}
			if err := keys.verify(c); err != nil {
				return nil, fmt.Errorf("ref %s: %w", ref.Name, err)
			}
		}
		updates = append(updates, u)
	}
	s.checks = updates
	return updates, nil
}

// checkConnected walks from the bundle's refs through every object not
// already in the repository, and fails if one is missing: a bundle must
// bring everything its refs reach beyond what the receiver has. Objects in
// the receiving repository are taken as complete, as git does.
func (s *StagedBundle) checkConnected() error {
	var base storer.EncodedObjectStorer
	if s.target != nil {
		base = s.target.repo.Storer
	}
	seen := map[plumbing.Hash]bool{}
	var stack []plumbing.Hash
	for _, r := range s.header.Refs {
		stack = append(stack, plumbing.NewHash(r.Commit))
	}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] {
			continue
		}
		seen[h] = true
		o, err := s.stage.repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			if base != nil && base.HasEncodedObject(h) == nil {
				continue
			}
			return fmt.Errorf("%w: object %s is neither in the bundle nor in %s", ErrBundle, h, s.gitDir)
		}
		if err != nil {
			return fmt.Errorf("%w: read object %s: %w", ErrBundle, h, err)
		}
		switch o.Type() {
		case plumbing.CommitObject:
			c, err := object.DecodeCommit(s.both, o)
			if err != nil {
				return fmt.Errorf("%w: commit %s: %w", ErrBundle, h, err)
			}
			stack = append(stack, c.TreeHash)
			stack = append(stack, c.ParentHashes...)
		case plumbing.TreeObject:
			t, err := object.DecodeTree(s.both, o)
			if err != nil {
				return fmt.Errorf("%w: tree %s: %w", ErrBundle, h, err)
			}
			for _, e := range t.Entries {
				switch {
				case e.Mode == filemode.Submodule:
				case e.Mode == filemode.Dir:
					stack = append(stack, e.Hash)
				case !seen[e.Hash]:
					// A file: its presence is enough, its content
					// (up to MaxObjectSize) is not read.
					seen[e.Hash] = true
					if s.both.HasEncodedObject(e.Hash) != nil {
						return fmt.Errorf("%w: object %s is neither in the bundle nor in %s", ErrBundle, e.Hash, s.gitDir)
					}
				}
			}
		case plumbing.TagObject:
			t, err := object.DecodeTag(s.both, o)
			if err != nil {
				return fmt.Errorf("%w: tag %s: %w", ErrBundle, h, err)
			}
			stack = append(stack, t.Target)
		}
	}
	return nil
}

// Commit makes the staged bundle part of the repository, after a successful
// Check. When the repository does not exist, the quarantine becomes it: its
// refs are written and it is renamed into place, with HEAD on the bundle's
// first branch. Otherwise the pack is moved in first (its .idx before its
// .pack, so that neither git nor go-git ever sees a pack without an index),
// and the refs last, all at once: one new packed-refs file renamed over the
// old one under git's packed-refs.lock. A watcher of the repository (see
// WatchRefs) sees packed-refs change.
func (s *StagedBundle) Commit() error {
	if s.checks == nil {
		return errors.New("commit bundle: not checked")
	}
	// Data first on disk, then the names that make it visible: a power
	// cut must not leave a ref to an object whose pack is empty.
	if err := syncDir(filepath.Join(s.staging, "objects", "pack"), true); err != nil {
		return fmt.Errorf("commit bundle: %w", err)
	}
	if s.target == nil {
		return s.commitNew()
	}
	if s.packed {
		if err := s.movePacks(); err != nil {
			return err
		}
	}
	return s.writeRefs()
}

func (s *StagedBundle) commitNew() error {
	refs := map[string]string{}
	for _, u := range s.checks {
		refs[u.Name] = u.New
	}
	if err := writePackedRefs(s.staging, refs); err != nil {
		return err
	}
	head := ""
	for _, u := range s.checks {
		if strings.HasPrefix(u.Name, "refs/heads/") {
			head = u.Name
			break
		}
	}
	if head != "" {
		if err := atomicfile.WriteFile(filepath.Join(s.staging, "HEAD"), []byte("ref: "+head+"\n"), 0o644); err != nil {
			return fmt.Errorf("commit bundle: %w", err)
		}
	}
	_ = s.stage.Close()
	s.stage = nil
	if err := os.Rename(s.staging, s.gitDir); err != nil {
		return fmt.Errorf("commit bundle: move repository into place: %w", err)
	}
	return syncDir(filepath.Dir(s.gitDir), false)
}

// movePacks moves the quarantine's packs into the repository.
func (s *StagedBundle) movePacks() error {
	src := filepath.Join(s.staging, "objects", "pack")
	dst := filepath.Join(s.gitDir, "objects", "pack")
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("commit bundle: %w", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("commit bundle: %w", err)
	}
	for _, ext := range []string{".idx", ".pack"} {
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), "pack-") || !strings.HasSuffix(e.Name(), ext) {
				continue
			}
			to := filepath.Join(dst, e.Name())
			if _, err := os.Stat(to); err == nil {
				continue // the same pack (packs are named by content)
			}
			if err := os.Rename(filepath.Join(src, e.Name()), to); err != nil {
				return fmt.Errorf("commit bundle: move %s: %w", e.Name(), err)
			}
		}
	}
	return syncDir(dst, false)
}

// syncDir flushes a directory (its entries) to disk, and with files the
// regular files in it too.
func syncDir(dir string, files bool) error {
	if files {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			f, err := os.Open(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			err = f.Sync()
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return atomicfile.SyncDir(dir)
}

// writeRefs writes the repository's refs with the updates applied as one
// packed-refs file, and removes loose ref files the updates supersede.
func (s *StagedBundle) writeRefs() error {
	iter, err := s.target.repo.Storer.IterReferences()
	if err != nil {
		return fmt.Errorf("commit bundle: list refs: %w", err)
	}
	refs := map[string]string{}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && r.Name() != plumbing.HEAD {
			refs[string(r.Name())] = r.Hash().String()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit bundle: list refs: %w", err)
	}
	changed := false
	for _, u := range s.checks {
		if refs[u.Name] != u.New {
			changed = true
		}
		refs[u.Name] = u.New
	}
	if !changed {
		return nil
	}
	if err := writePackedRefs(s.gitDir, refs); err != nil {
		return err
	}
	for _, u := range s.checks {
		loose := filepath.Join(s.gitDir, filepath.FromSlash(u.Name))
		if err := os.Remove(loose); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("commit bundle: remove loose ref %s: %w", u.Name, err)
		}
	}
	return nil
}

// writePackedRefs replaces gitDir/packed-refs with refs, through git's lock
// file: a concurrent git writing refs fails rather than losing an update.
func writePackedRefs(gitDir string, refs map[string]string) error {
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("# pack-refs with: sorted \n") // no "peeled": git peels tags itself
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", refs[n], n)
	}
	final := filepath.Join(gitDir, "packed-refs")
	lock := final + ".lock"
	f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("commit bundle: lock refs: %w", err)
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(lock, final)
	}
	if err != nil {
		_ = os.Remove(lock)
		return fmt.Errorf("commit bundle: write refs: %w", err)
	}
	return syncDir(gitDir, false)
}

// Close releases the repositories and removes the quarantine, unless Commit
// made it the repository.
func (s *StagedBundle) Close() error {
	if s.stage != nil {
		_ = s.stage.Close()
		s.stage = nil
	}
	if s.target != nil {
		_ = s.target.Close()
		s.target = nil
	}
	if _, err := os.Stat(s.staging); err == nil {
		return os.RemoveAll(s.staging)
	}
	return nil
}

// layeredStorer reads objects from a quarantine first, then from the
// repository it is staged for.
type layeredStorer struct {
	storer.EncodedObjectStorer
	base storer.EncodedObjectStorer // nil: nothing below
}

func (l layeredStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := l.EncodedObjectStorer.EncodedObject(t, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) && l.base != nil {
		return l.base.EncodedObject(t, h)
	}
	return o, err
}

func (l layeredStorer) HasEncodedObject(h plumbing.Hash) error {
	err := l.EncodedObjectStorer.HasEncodedObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) && l.base != nil {
		return l.base.HasEncodedObject(h)
	}
	return err
}

func (l layeredStorer) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	n, err := l.EncodedObjectStorer.EncodedObjectSize(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) && l.base != nil {
		return l.base.EncodedObjectSize(h)
	}
	return n, err
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
