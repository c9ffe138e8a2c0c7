package source

import (
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Descends reports whether commit descendant is commit ancestor or has it
// in its history, both given by full hash. A commit the repository does
// not hold is no ancestor. It answers the placement policy's rollback
// guard (scheduler.Ancestry) for a local repository, as Remote.Descends
// does for the agent's cache.
func (r *Repo) Descends(ancestor, descendant string) (bool, error) {
	for _, h := range []string{ancestor, descendant} {
		if len(h) != 2*len(plumbing.ZeroHash) || !isHex(h) {
			return false, fmt.Errorf("descends: %q is not a full commit hash", h)
		}
	}
	ok, err := r.isAncestor(plumbing.NewHash(strings.ToLower(ancestor)), plumbing.NewHash(strings.ToLower(descendant)))
	if err != nil {
		return false, fmt.Errorf("descends: %w", err)
	}
	return ok, nil
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
