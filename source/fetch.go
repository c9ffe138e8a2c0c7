package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Fetch fetches the tracked ref from the first URL that answers with an
// acceptable head, into the cache, and returns that head with its tree.
//
// Fetches are incremental: the cache tells the server what it has, and a
// remote whose ref has not moved costs one ref advertisement and writes
// nothing. A Ref that is a commit hash already in the cache costs nothing at
// all.
//
// applied is the commit already running ("" for none). A head that does not
// descend from it is refused with an error wrapping ErrNotFastForward,
// unless AllowRewrite; with VerifyKeysFile, an unsigned or foreign-signed
// head is refused with an error wrapping ErrUntrusted that names the commit.
// A refused head, like an unreachable URL, sends Fetch on to the next URL; the
// errors of the URLs passed over are in Fetched.Skipped. When no URL gives an
// acceptable head the error names every URL and why it failed, and wraps
// each cause (errors.Is finds ErrNotFastForward, ErrUntrusted,
// context.Canceled, …); the Fetched returned with it then names the first
// head that was refused, if any, for status: its Commit and Source are set,
// its FS is nil, since it must not be applied.
func (r *Remote) Fetch(ctx context.Context, applied string) (Fetched, error) {
	if applied != "" {
		if len(applied) != 2*len(plumbing.ZeroHash) || !isHex(applied) {
			return Fetched{}, fmt.Errorf("fetch %s: applied commit %q is not a full commit hash", r.cfg.Ref, applied)
		}
		applied = strings.ToLower(applied)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = applied

	if r.kind == kindCommit {
		// A commit never changes: once it is in the cache no URL is needed.
		if c, err := r.cache.Resolve(r.name); err == nil {
			f, err := r.accept(c, applied, cacheSource)
			if err != nil {
				return Fetched{Commit: c, Source: cacheSource}, fmt.Errorf("fetch %s: %w", r.cfg.Ref, err)
			}
			return f, nil
		}
	}

	var failed []error
	var refused Fetched // the first head refused, for the caller's status
	for _, e := range r.endpoints {
		if err := ctx.Err(); err != nil {
			failed = append(failed, err)
			break
		}
		c, err := r.update(ctx, e)
		if err == nil {
			var f Fetched
			if f, err = r.accept(c, applied, e.display); err == nil {
				f.Skipped = failed
				return f, nil
			}
			if refused.Commit.Hash == "" && (errors.Is(err, ErrNotFastForward) || errors.Is(err, ErrUntrusted)) {
				refused = Fetched{Commit: c, Source: e.display}
			}
		}
		failed = append(failed, fmt.Errorf("%s: %w", e.display, e.scrub(err)))
	}
	return refused, &fetchError{ref: r.cfg.Ref, errs: failed}
}

// update fetches the tracked ref from one URL and returns the commit it
// points at.
func (r *Remote) update(ctx context.Context, e *endpoint) (Commit, error) {
	switch r.kind {
	case kindBranch, kindTag:
		c, err := r.fetchRef(ctx, e, r.kind)
		if errors.Is(err, git.NoMatchingRefSpecError{}) {
			err = fmt.Errorf("%w: %w", ErrUnknownRevision, err)
		}
		return c, err
	case kindCommit:
		// Servers need not serve a bare hash (uploadpack.allowAnySHA1InWant),
		// so fetch every branch and tag and look for it there.
		specs := []config.RefSpec{
			config.RefSpec("+refs/heads/*:refs/remotes/" + e.name + "/*"),
			config.RefSpec("+refs/tags/*:refs/tags/" + e.name + "/*"),
		}
		if err := r.gitFetch(ctx, e, specs...); err != nil {
			return Commit{}, err
		}
		c, err := r.cache.Resolve(r.name)
		if errors.Is(err, ErrUnknownRevision) {
			return Commit{}, fmt.Errorf("commit %s is on no branch or tag: %w", r.name, err)
		}
		return c, err
	}
	// A short name: a branch, else a tag. Start with what this URL had
	// last time, so that a tracked tag costs one round trip too.
	order := []refKind{kindBranch, kindTag}
	if e.tagFirst {
		order = []refKind{kindTag, kindBranch}
	}
	for _, kind := range order {
		c, err := r.fetchRef(ctx, e, kind)
		if errors.Is(err, git.NoMatchingRefSpecError{}) {
			continue
		}
		if err == nil {
			e.tagFirst = kind == kindTag
		}
		return c, err
	}
	hint := ""
	if isHex(r.name) {
		hint = " (an abbreviated commit hash cannot be tracked: give all 40 digits)"
	}
	return Commit{}, fmt.Errorf("%w %q: no branch or tag of that name%s", ErrUnknownRevision, r.name, hint)
}

// fetchRef fetches branch or tag r.name into the cache's namespace for e
// (refs/remotes/rN/NAME, refs/tags/rN/NAME) and resolves it to a commit,
// peeling an annotated tag. A ref the remote lacks gives an error wrapping
// git.NoMatchingRefSpecError.
func (r *Remote) fetchRef(ctx context.Context, e *endpoint, kind refKind) (Commit, error) {
	src, dst := "refs/heads/"+r.name, "refs/remotes/"+e.name+"/"+r.name
	if kind == kindTag {
		src, dst = "refs/tags/"+r.name, "refs/tags/"+e.name+"/"+r.name
	}
	if err := r.gitFetch(ctx, e, config.RefSpec("+"+src+":"+dst)); err != nil {
		return Commit{}, err
	}
	c, err := r.cache.Resolve(dst)
	if err != nil {
		return Commit{}, fmt.Errorf("%s: %w", src, err)
	}
	return c, nil
}

// gitFetch runs one go-git fetch from e into the cache. Tags come only
// through specs. Being up to date is not an error.
func (r *Remote) gitFetch(ctx context.Context, e *endpoint, specs ...config.RefSpec) error {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	// A remote that sends nothing for StallTimeout (neither progress nor
	// pack data) is given up on: the agent's loop waits for its fetch.
	ctx, watch := watchStall(ctx, r.cfg.StallTimeout)
	defer watch.stop()
	// The pack reaches the cache only through the guard of its sizes.
	st := guardedStorer{Storer: r.cache.repo.Storer, limits: defaultPackLimits, touch: watch.touch}
	rem := git.NewRemote(st, &config.RemoteConfig{Name: e.name, URLs: []string{e.url}})
	err := rem.FetchContext(ctx, &git.FetchOptions{
		RemoteName: e.name,
		RefSpecs:   specs,
		Auth:       e.auth,
		Tags:       git.NoTags,
		CABundle:   r.cfg.CABundle,
		ClientCert: r.cfg.ClientCert,
		ClientKey:  r.cfg.ClientKey,
		Progress:   touchWriter{watch},
	})
	err = watch.wrap(err)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("the pack ended early (the connection dropped or the server cut it short); nothing of it was kept: %w", err)
	}
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	if err != nil {
		// go-git leaves the pack it was writing when a fetch fails half
		// way (a refused object, a dropped connection): nothing else
		// writes here while the cache is locked.
		removeTempPacks(r.cfg.CacheDir)
	}
	return err
}

// removeTempPacks removes the partial packs (objects/pack/tmp_pack_*) that
// go-git leaves in the bare repository gitDir after a failed fetch.
func removeTempPacks(gitDir string) {
	tmp, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "tmp_pack_*"))
	for _, f := range tmp {
		_ = os.Remove(f)
	}
}

// accept checks a head against the applied commit and the trusted keys and
// returns it with its tree.
func (r *Remote) accept(c Commit, applied, source string) (Fetched, error) {
	if applied != "" && c.Hash != applied && !r.cfg.AllowRewrite {
		ok, err := r.cache.isAncestor(plumbing.NewHash(applied), plumbing.NewHash(c.Hash))
		if err != nil {
			return Fetched{}, fmt.Errorf("check that head %s descends from applied commit %s: %w", c.Short, applied, err)
		}
		if !ok {
			return Fetched{}, fmt.Errorf("%w: head %s does not descend from %s "+
				"(history rewritten, or a stale or forked mirror; allow-rewrite accepts it)",
				ErrNotFastForward, c.Short, applied[:shortLen])
		}
	}
	if err := r.verify(c.Hash); err != nil {
		return Fetched{}, err
	}
	fsys, err := r.cache.FS(c)
	if err != nil {
		return Fetched{}, err
	}
	return Fetched{Commit: c, FS: fsys, Source: source}, nil
}

// verify checks the signature of a commit in the cache when the Remote has
// trusted keys.
func (r *Remote) verify(hash string) error {
	if r.keys == nil {
		return nil
	}
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	c, err := object.GetCommit(r.cache.repo.Storer, plumbing.NewHash(hash))
	if err != nil {
		return fmt.Errorf("read commit %s: %w", hash, err)
	}
	return r.keys.verify(c)
}

// isAncestor reports whether commit anc is desc or one of its ancestors,
// walking desc's history breadth first. In the usual case, a push of a few
// commits on top of anc, it stops after a few steps; a refused head costs a
// walk of its whole history. A commit anc that is not in the repository is
// no ancestor: a fetch brings a head's whole history.
func (r *Repo) isAncestor(anc, desc plumbing.Hash) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return isAncestorIn(r.repo.Storer, anc, desc)
}

// fetchError is the error of a Fetch that no URL satisfied: one error per
// URL tried, each naming its URL.
type fetchError struct {
	ref  string
	errs []error
}

func (e *fetchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fetch %s: ", e.ref)
	if len(e.errs) > 1 {
		fmt.Fprintf(&b, "%d URLs tried: ", len(e.errs))
	}
	for i, err := range e.errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the error of every URL tried, for errors.Is and errors.As.
func (e *fetchError) Unwrap() []error { return e.errs }
