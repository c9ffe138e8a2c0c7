package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Git bundles, written and read with go-git.
//
// go-git has no bundle support, but a bundle is only a short text header
// followed by an ordinary packfile, and go-git has a packfile encoder and an
// indexer. Writing the header ourselves keeps kelpie free of a git binary on
// the machine that makes bundles and on the hosts that import them, and keeps
// the pack's content under our control: WriteBundle writes self-contained
// (non-thin) packs, which `git bundle verify` and `git fetch BUNDLE` accept
// as well as they accept git's own.

// bundleSignature is the first line of a v2 git bundle (git's
// Documentation/gitformat-bundle.txt); v3 adds capability lines.
const (
	bundleSignatureV2 = "# v2 git bundle"
	bundleSignatureV3 = "# v3 git bundle"
	maxBundleHeader   = 1 << 20 // header bytes; a header is one line per ref and prerequisite
	bundlePackWindow  = 10      // delta search window, git's default for pack-objects
)

// ErrBundle is wrapped by the errors of a bundle that is not a well-formed
// git bundle, or whose content does not match its header.
var ErrBundle = errors.New("invalid git bundle")

// ErrMissingPrerequisite is wrapped by the error of importing an incremental
// bundle into a repository that lacks a commit the bundle builds on.
var ErrMissingPrerequisite = errors.New("bundle prerequisite missing")

// BundleRef is one ref a bundle carries: its full name (refs/heads/main,
// refs/tags/v1) and the object it points at (a commit, or an annotated tag).
type BundleRef struct {
	Name   string `json:"name"`
	Commit string `json:"commit"`
}

// BundleHeader is what a bundle's header says: the refs it carries and the
// commits a repository must already have to take it.
type BundleHeader struct {
	// Prerequisites are commits the bundle's objects build on: a receiver
	// must have them (and their history). Empty for a full bundle.
	Prerequisites []string
	// Refs are the refs the bundle carries, in header order.
	Refs []BundleRef
}

// ResolveBundleRef turns a ref as an operator types it into the ref a
// bundle carries (its full name and the object it points at: a commit, or an
// annotated tag object) and the commit that object is or peels to: "main" is
// refs/heads/main (else refs/tags/main), "v1" a tag, "HEAD" the branch HEAD
// points at, a full refs/... name itself. Remote-tracking refs of an agent
// cache (refs/remotes/rN/NAME, refs/tags/rN/NAME) are found by their short
// name too, so that a bundle can be made from an agent's cache.
func (r *Repo) ResolveBundleRef(name string) (BundleRef, Commit, error) {
	r.mu.Lock()
	st := r.repo.Storer
	var candidates []plumbing.ReferenceName
	switch {
	case name == "HEAD" || name == "@":
		head, err := st.Reference(plumbing.HEAD)
		if err != nil {
			r.mu.Unlock()
			return BundleRef{}, Commit{}, fmt.Errorf("ref HEAD: %w", err)
		}
		if head.Type() != plumbing.SymbolicReference {
			r.mu.Unlock()
			return BundleRef{}, Commit{}, fmt.Errorf("ref HEAD is detached: name a branch or tag")
		}
		candidates = []plumbing.ReferenceName{head.Target()}
	case strings.HasPrefix(name, "refs/"):
		candidates = []plumbing.ReferenceName{plumbing.ReferenceName(name)}
	default:
		candidates = []plumbing.ReferenceName{
			plumbing.NewBranchReferenceName(name),
			plumbing.NewTagReferenceName(name),
			plumbing.ReferenceName("refs/remotes/r0/" + name),
			plumbing.ReferenceName("refs/tags/r0/" + name),
		}
	}
	var found *plumbing.Reference
	for _, c := range candidates {
		ref, err := st.Reference(c)
		if err == nil {
			found = ref
			break
		}
	}
	r.mu.Unlock()
	if found == nil {
		return BundleRef{}, Commit{}, fmt.Errorf("%w %q: no branch or tag of that name", ErrUnknownRevision, name)
	}
	full := string(found.Name())
	// An agent cache's refs go back to the names upstream gave them.
	switch {
	case strings.HasPrefix(full, "refs/remotes/r0/"):
		full = "refs/heads/" + strings.TrimPrefix(full, "refs/remotes/r0/")
	case strings.HasPrefix(full, "refs/tags/r0/"):
		full = "refs/tags/" + strings.TrimPrefix(full, "refs/tags/r0/")
	}
	c, err := r.Resolve(found.Hash().String())
	if err != nil {
		return BundleRef{}, Commit{}, fmt.Errorf("ref %s: %w", full, err)
	}
	return BundleRef{Name: full, Commit: found.Hash().String()}, c, nil
}

// WriteBundle writes a v2 git bundle to w carrying refs (each Commit a full
// commit hash in this repository) with every object they reach, except what
// the commits of since already reach: those commits that are ancestors of a
// ref become the bundle's prerequisites, and the bundle holds only what is
// new. A commit of since that is not in the repository, or an ancestor of no
// ref, is ignored (the bundle is then larger, never incomplete).
//
// The pack is self-contained (deltas only against objects in the same
// pack), so any repository holding the prerequisites can take it: git
// (`git fetch BUNDLE`) as well as ImportBundle.
func (r *Repo) WriteBundle(w io.Writer, refs []BundleRef, since []string) (BundleHeader, error) {
	if len(refs) == 0 {
		return BundleHeader{}, errors.New("write bundle: no refs")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.repo.Storer

	var hdr BundleHeader
	var wants []plumbing.Hash
	seen := map[string]bool{}
	for _, ref := range refs {
		if err := checkRefName(ref.Name); err != nil {
			return BundleHeader{}, fmt.Errorf("write bundle: %w", err)
		}
		if seen[ref.Name] {
			return BundleHeader{}, fmt.Errorf("write bundle: ref %s given twice", ref.Name)
		}
		seen[ref.Name] = true
		if !isFullHash(ref.Commit) {
			return BundleHeader{}, fmt.Errorf("write bundle: ref %s: %q is not a full object hash", ref.Name, ref.Commit)
		}
		h := plumbing.NewHash(ref.Commit)
		if _, err := st.EncodedObject(plumbing.AnyObject, h); err != nil {
			return BundleHeader{}, fmt.Errorf("write bundle: ref %s: object %s: %w", ref.Name, h, err)
		}
		wants = append(wants, h)
		hdr.Refs = append(hdr.Refs, BundleRef{Name: ref.Name, Commit: h.String()})
	}

	var haves []plumbing.Hash
	for _, s := range since {
		if !isFullHash(s) {
			return BundleHeader{}, fmt.Errorf("write bundle: basis %q is not a full commit hash", s)
		}
		h := plumbing.NewHash(s)
		if _, err := object.GetCommit(st, h); err != nil {
			continue // not here: it cannot shrink the bundle
		}
		for _, want := range wants {
			c, err := peelToCommit(st, want)
			if err != nil {
				return BundleHeader{}, fmt.Errorf("write bundle: %w", err)
			}
			ok, err := isAncestorIn(st, h, c)
			if err != nil {
				return BundleHeader{}, fmt.Errorf("write bundle: %w", err)
			}
			if ok {
				haves = append(haves, h)
				hdr.Prerequisites = append(hdr.Prerequisites, h.String())
				break
			}
		}
	}
	sort.Strings(hdr.Prerequisites)

	objs, err := revlist.Objects(st, wants, haves)
	if err != nil {
		return BundleHeader{}, fmt.Errorf("write bundle: list objects: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	if _, err := bw.WriteString(formatBundleHeader(hdr)); err != nil {
		return BundleHeader{}, fmt.Errorf("write bundle: %w", err)
	}
	if _, err := packfile.NewEncoder(bw, st, false).Encode(objs, bundlePackWindow); err != nil {
		return BundleHeader{}, fmt.Errorf("write bundle: pack %d objects: %w", len(objs), err)
	}
	if err := bw.Flush(); err != nil {
		return BundleHeader{}, fmt.Errorf("write bundle: %w", err)
	}
	return hdr, nil
}

// formatBundleHeader renders a v2 header: the signature, one "-HASH" line
// per prerequisite, one "HASH REFNAME" line per ref, and a blank line.
func formatBundleHeader(h BundleHeader) string {
	var b strings.Builder
	b.WriteString(bundleSignatureV2 + "\n")
	for _, p := range h.Prerequisites {
		b.WriteString("-" + p + "\n")
	}
	for _, r := range h.Refs {
		b.WriteString(r.Commit + " " + r.Name + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// ReadBundleHeader reads a bundle's header from br and leaves br at the
// first byte of the pack. It takes v2 bundles and v3 bundles of SHA-1
// repositories without a filter (what `git bundle create` writes by
// default).
func ReadBundleHeader(br *bufio.Reader) (BundleHeader, error) {
	var hdr BundleHeader
	read := 0
	line := func() (string, error) {
		s, err := br.ReadString('\n')
		read += len(s)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", fmt.Errorf("%w: header: %w", ErrBundle, err)
		}
		if read > maxBundleHeader {
			return "", fmt.Errorf("%w: header longer than %d bytes", ErrBundle, maxBundleHeader)
		}
		return strings.TrimSuffix(s, "\n"), nil
	}
	sig, err := line()
	if err != nil {
		return hdr, err
	}
	v3 := false
	switch sig {
	case bundleSignatureV2:
	case bundleSignatureV3:
		v3 = true
	default:
		return hdr, fmt.Errorf("%w: does not start with %q", ErrBundle, bundleSignatureV2)
	}
	names := map[string]bool{}
	for {
		l, err := line()
		if err != nil {
			return hdr, err
		}
		switch {
		case l == "":
			if len(hdr.Refs) == 0 {
				return hdr, fmt.Errorf("%w: it carries no refs", ErrBundle)
			}
			return hdr, nil
		case v3 && strings.HasPrefix(l, "@"):
			if l != "@object-format=sha1" {
				return hdr, fmt.Errorf("%w: unsupported capability %q", ErrBundle, l)
			}
		case strings.HasPrefix(l, "-"):
			h, _, _ := strings.Cut(l[1:], " ")
			if !isFullHash(h) {
				return hdr, fmt.Errorf("%w: bad prerequisite line %q", ErrBundle, l)
			}
			hdr.Prerequisites = append(hdr.Prerequisites, strings.ToLower(h))
		default:
			h, name, ok := strings.Cut(l, " ")
			if !ok || !isFullHash(h) {
				return hdr, fmt.Errorf("%w: bad ref line %q", ErrBundle, l)
			}
			if err := checkRefName(name); err != nil {
				return hdr, fmt.Errorf("%w: %w", ErrBundle, err)
			}
			if names[name] {
				return hdr, fmt.Errorf("%w: ref %s listed twice", ErrBundle, name)
			}
			names[name] = true
			hdr.Refs = append(hdr.Refs, BundleRef{Name: name, Commit: strings.ToLower(h)})
		}
	}
}

// checkRefName accepts the refs a bundle may carry into a mirror: branches
// and tags with valid names.
func checkRefName(name string) error {
	if !strings.HasPrefix(name, "refs/heads/") && !strings.HasPrefix(name, "refs/tags/") {
		return fmt.Errorf("ref %q: only refs/heads/… and refs/tags/… are carried", name)
	}
	if err := plumbing.ReferenceName(name).Validate(); err != nil {
		return fmt.Errorf("ref %q: %w", name, err)
	}
	return nil
}

func isFullHash(s string) bool {
	return len(s) == 2*len(plumbing.ZeroHash) && isHex(s)
}

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
	cr := &countReader{r: br}
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
				if e.Mode != filemode.Submodule {
					stack = append(stack, e.Hash)
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
		if err := writeFileAtomic(filepath.Join(s.staging, "HEAD"), []byte("ref: "+head+"\n")); err != nil {
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
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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

// writeFileAtomic writes name through a temporary file and a rename.
func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
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

// peelToCommit follows annotated tags from h to a commit.
func peelToCommit(s storer.EncodedObjectStorer, h plumbing.Hash) (plumbing.Hash, error) {
	for i := 0; i < maxPeel; i++ {
		o, err := s.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read object %s: %w", h, err)
		}
		switch o.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			t, err := object.DecodeTag(s, o)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("read tag %s: %w", h, err)
			}
			h = t.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("object %s is a %s, not a commit", h, o.Type())
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("tag chain from %s longer than %d", h, maxPeel)
}

// isAncestorIn reports whether anc is desc or one of its ancestors, walking
// desc's history breadth first.
func isAncestorIn(s storer.EncodedObjectStorer, anc, desc plumbing.Hash) (bool, error) {
	seen := map[plumbing.Hash]bool{desc: true}
	queue := []plumbing.Hash{desc}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if h == anc {
			return true, nil
		}
		c, err := object.GetCommit(s, h)
		if err != nil {
			return false, fmt.Errorf("read commit %s: %w", h, err)
		}
		for _, p := range c.ParentHashes {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, nil
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

// MirrorRef is one ref of a mirror repository, for listings.
type MirrorRef struct {
	Name    string `json:"name"`
	Commit  Commit `json:"commit"`
	Commits int    `json:"commits"` // commits reachable from it, itself included
}

// ListRefs lists the branches and tags of the repository with their
// commits (annotated tags peeled) and history lengths, sorted by name.
func (r *Repo) ListRefs() ([]MirrorRef, error) {
	r.mu.Lock()
	st := r.repo.Storer
	iter, err := st.IterReferences()
	if err != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("list refs: %w", err)
	}
	type raw struct {
		name string
		hash plumbing.Hash
	}
	var refs []raw
	_ = iter.ForEach(func(ref *plumbing.Reference) error {
		n := string(ref.Name())
		if ref.Type() == plumbing.HashReference && (strings.HasPrefix(n, "refs/heads/") || strings.HasPrefix(n, "refs/tags/")) {
			refs = append(refs, raw{n, ref.Hash()})
		}
		return nil
	})
	var out []MirrorRef
	var ferr error
	for _, ref := range refs {
		c, err := peelToCommit(st, ref.hash)
		if err != nil {
			ferr = fmt.Errorf("ref %s: %w", ref.name, err)
			break
		}
		n, err := countCommits(st, c)
		if err != nil {
			ferr = fmt.Errorf("ref %s: %w", ref.name, err)
			break
		}
		co, err := object.GetCommit(st, c)
		if err != nil {
			ferr = fmt.Errorf("ref %s: %w", ref.name, err)
			break
		}
		out = append(out, MirrorRef{Name: ref.name, Commit: newCommit(co), Commits: n})
	}
	r.mu.Unlock()
	if ferr != nil {
		return nil, ferr
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// countCommits counts the commits reachable from h, h included.
func countCommits(s storer.EncodedObjectStorer, h plumbing.Hash) (int, error) {
	seen := map[plumbing.Hash]bool{h: true}
	stack := []plumbing.Hash{h}
	for len(stack) > 0 {
		c, err := object.GetCommit(s, stack[len(stack)-1])
		stack = stack[:len(stack)-1]
		if err != nil {
			return 0, err
		}
		for _, p := range c.ParentHashes {
			if !seen[p] {
				seen[p] = true
				stack = append(stack, p)
			}
		}
	}
	return len(seen), nil
}
