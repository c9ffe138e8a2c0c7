package source

import (
	"errors"
	"fmt"
	"io/fs"
)

// Sentinel errors. Errors returned by this package wrap them, so callers can
// test with errors.Is and still print a message that names the revision or
// path concerned.
var (
	// ErrNotRepository means no git repository was found at or above a path.
	ErrNotRepository = errors.New("not a git repository (or any of the parent directories)")

	// ErrUnknownRevision means a revision names no commit in the repository.
	ErrUnknownRevision = errors.New("unknown revision")

	// ErrAmbiguousRevision means an abbreviated hash matches several commits.
	ErrAmbiguousRevision = errors.New("ambiguous revision")

	// ErrUnsupportedRevision means a revision uses git syntax that makes no
	// sense without a reflog, an upstream or an index (main@{1}, @{u},
	// :/text, rev:path) or names a range (a..b) rather than one commit.
	ErrUnsupportedRevision = errors.New("unsupported revision syntax")

	// ErrSubmodule is the error of reading a submodule (gitlink) entry as a
	// file: its content lives in another repository. It wraps fs.ErrNotExist.
	ErrSubmodule = fmt.Errorf("submodule content is not in this repository: %w", fs.ErrNotExist)
)
