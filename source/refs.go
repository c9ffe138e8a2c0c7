package source

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

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
