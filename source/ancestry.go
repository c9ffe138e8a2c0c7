package source

import (
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
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
