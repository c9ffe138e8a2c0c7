package source

import (
	"errors"
	"io/fs"
)

// Fetched is one revision of a remote repository as the agent consumes it:
// the commit its ref points at after a fetch, and that commit's tree.
type Fetched struct {
	// Commit is the commit the tracked ref resolved to.
	Commit Commit
	// FS is the commit's tree, read from the local cache (no checkout).
	FS fs.FS
	// Source names where it came from: the URL that answered (without
	// credentials), or "cache" when no URL was needed.
	Source string
	// Skipped holds, in order, the errors of the URLs tried before Source:
	// unreachable, or offering a head that was refused (errors.Is finds
	// ErrNotFastForward or ErrUntrusted). Empty when the first URL
	// answered. The head is good, but these deserve a log line: an
	// upstream that was passed over for a mirror is news to an operator.
	Skipped []error
}

// Errors a fetch reports for a head the agent must not apply. The agent keeps
// running the last good commit and shows the error.
var (
	// ErrNotFastForward: the new head does not descend from the commit
	// already applied (a history rewrite, a stale or forked mirror).
	ErrNotFastForward = errors.New("not a fast-forward")
	// ErrUntrusted: the head commit is unsigned, or signed by a key that is
	// not among the trusted keys.
	ErrUntrusted = errors.New("commit signature not trusted")
)
