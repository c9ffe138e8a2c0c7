package source

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/revlist"
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
