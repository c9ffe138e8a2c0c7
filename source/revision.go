package source

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// minAbbrev is the shortest abbreviated hash git accepts.
const minAbbrev = 4

// maxPeel bounds tag-to-tag chains, which a hostile repository could make
// circular.
const maxPeel = 32

// Resolve resolves anything git accepts for a commit: a full or abbreviated
// sha (at least 4 hex digits), a branch, a remote branch (origin/main), a tag
// (annotated tags are peeled to their commit), a full ref name, HEAD or @,
// and any chain of suffixes: ~N, ^N, ^{}, ^{commit} and ^{/regexp}
// (HEAD~1, main^, v1.0~2, main^2, HEAD^{/fix}).
//
// Names are looked up in git's order: a full 40-digit hash first, then
// refs (NAME, refs/NAME, refs/tags/NAME, refs/heads/NAME, refs/remotes/NAME,
// refs/remotes/NAME/HEAD), then abbreviated hashes. An abbreviated hash must
// match exactly one commit or tag of a commit; objects of other kinds are
// not candidates.
//
// A revision that names no commit gives an error wrapping
// ErrUnknownRevision that names it: `unknown revision "nope"`. Syntax that
// needs a reflog, an upstream or the index (main@{1}, @{u}, :/text,
// rev:path) or that names a range (a..b) gives ErrUnsupportedRevision.
func (r *Repo) Resolve(rev string) (Commit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x := &resolver{st: r.repo.Storer, rev: rev}
	c, err := x.commit(rev)
	if err != nil {
		return Commit{}, err
	}
	return newCommit(c), nil
}

// resolver resolves one revision; rev is kept whole for error messages.
type resolver struct {
	st  storer.Storer
	rev string
}

// commit resolves s and peels it to a commit.
func (x *resolver) commit(s string) (*object.Commit, error) {
	h, err := x.object(s)
	if err != nil {
		return nil, err
	}
	return x.peelCommit(h)
}

// object resolves s to the hash of an object of any type. Like git's
// get_oid_1 it works from the end: a trailing ^{…}, then a trailing ~N or
// ^N, then a plain name.
func (x *resolver) object(s string) (plumbing.Hash, error) {
	if strings.HasSuffix(s, "}") {
		if i := strings.LastIndex(s, "^{"); i >= 0 {
			h, err := x.object(s[:i])
			if err != nil {
				return plumbing.ZeroHash, err
			}
			return x.peel(h, s[i+2:len(s)-1])
		}
	}

	j := len(s)
	for j > 0 && s[j-1] >= '0' && s[j-1] <= '9' {
		j--
	}
	if j > 0 && (s[j-1] == '~' || s[j-1] == '^') {
		n := 1
		if j < len(s) {
			var err error
			if n, err = strconv.Atoi(s[j:]); err != nil {
				return plumbing.ZeroHash, x.errorf(ErrUnknownRevision, "bad number %q", s[j:])
			}
		}
		c, err := x.commit(s[:j-1])
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if s[j-1] == '~' {
			return x.ancestor(c, n)
		}
		return x.parent(c, n)
	}

	return x.name(s)
}

// ancestor follows first parents n times (git's ~N).
func (x *resolver) ancestor(c *object.Commit, n int) (plumbing.Hash, error) {
	h := c.Hash
	for i := 0; i < n; i++ {
		if len(c.ParentHashes) == 0 {
			return plumbing.ZeroHash, x.errorf(ErrUnknownRevision, "commit %s has no parent", short(c.Hash))
		}
		h = c.ParentHashes[0]
		if i == n-1 {
			break // the caller peels; don't decode the last one twice
		}
		var err error
		if c, err = x.peelCommit(h); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	return h, nil
}

// parent returns the nth parent, or the commit itself for n == 0 (git's ^N).
func (x *resolver) parent(c *object.Commit, n int) (plumbing.Hash, error) {
	if n == 0 {
		return c.Hash, nil
	}
	if n > len(c.ParentHashes) {
		return plumbing.ZeroHash, x.errorf(ErrUnknownRevision, "commit %s has %d parent(s), no parent %d",
			short(c.Hash), len(c.ParentHashes), n)
	}
	return c.ParentHashes[n-1], nil
}

// peel applies a ^{what} suffix to the object h.
func (x *resolver) peel(h plumbing.Hash, what string) (plumbing.Hash, error) {
	switch {
	case what == "":
		return x.peelTags(h)
	case what == "commit":
		c, err := x.peelCommit(h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		return c.Hash, nil
	case what == "object":
		if _, err := x.load(h); err != nil {
			return plumbing.ZeroHash, err
		}
		return h, nil
	case strings.HasPrefix(what, "/"):
		return x.search(h, what[1:])
	default:
		return plumbing.ZeroHash, x.errorf(ErrUnsupportedRevision, "^{%s} does not name a commit", what)
	}
}

// search finds the youngest commit reachable from h whose message matches
// pattern, in committer-time order as git does for ^{/pattern}. A leading
// "!-" negates the match and "!!" stands for a literal "!".
func (x *resolver) search(h plumbing.Hash, pattern string) (plumbing.Hash, error) {
	negate := false
	switch {
	case strings.HasPrefix(pattern, "!-"):
		negate, pattern = true, pattern[2:]
	case strings.HasPrefix(pattern, "!!"):
		pattern = pattern[1:]
	case strings.HasPrefix(pattern, "!"):
		return plumbing.ZeroHash, x.errorf(ErrUnsupportedRevision, "^{/!…} is reserved; use !- to negate or !! for a literal !")
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve revision %q: %w", x.rev, err)
	}
	start, err := x.peelCommit(h)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	found := plumbing.ZeroHash
	err = object.NewCommitIterCTime(start, nil, nil).ForEach(func(c *object.Commit) error {
		if re.MatchString(c.Message) != negate {
			found = c.Hash
			return storer.ErrStop
		}
		return nil
	})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve revision %q: walk history: %w", x.rev, err)
	}
	if found.IsZero() {
		return plumbing.ZeroHash, x.errorf(ErrUnknownRevision, "no commit message matches %q", pattern)
	}
	return found, nil
}

// name resolves a plain name: a full hash, a ref, or an abbreviated hash.
func (x *resolver) name(s string) (plumbing.Hash, error) {
	if s == "@" {
		s = "HEAD"
	}
	if strings.Contains(s, "@{") || strings.Contains(s, ":") || strings.Contains(s, "..") {
		return plumbing.ZeroHash, x.errorf(ErrUnsupportedRevision, "")
	}
	if len(s) == 2*len(plumbing.ZeroHash) && isHex(s) {
		h := plumbing.NewHash(strings.ToLower(s))
		if _, err := x.load(h); err != nil {
			return plumbing.ZeroHash, err
		}
		return h, nil
	}
	if h, ok, err := x.ref(s); err != nil || ok {
		return h, err
	}
	if len(s) >= minAbbrev && isHex(s) {
		return x.abbrev(strings.ToLower(s))
	}
	return plumbing.ZeroHash, x.errorf(ErrUnknownRevision, "")
}

// ref looks s up with git's ref rules. Names that are not valid ref names
// are skipped, so that nothing outside refs/ and the ALL_CAPS pseudo-refs
// (HEAD, FETCH_HEAD, ORIG_HEAD) is ever read as a ref.
func (x *resolver) ref(s string) (plumbing.Hash, bool, error) {
	for _, rule := range plumbing.RefRevParseRules {
		name := plumbing.ReferenceName(fmt.Sprintf(rule, s))
		if rule == "%s" && !strings.HasPrefix(s, "refs/") && !isPseudoRef(s) {
			continue
		}
		if !isPseudoRef(string(name)) && name.Validate() != nil {
			continue
		}
		ref, err := storer.ResolveReference(x.st, name)
		switch {
		case err == nil:
			return ref.Hash(), true, nil
		case errors.Is(err, plumbing.ErrReferenceNotFound):
			continue
		default:
			return plumbing.ZeroHash, false, fmt.Errorf("resolve revision %q: read ref %s: %w", x.rev, name, err)
		}
	}
	return plumbing.ZeroHash, false, nil
}

// abbrev resolves an abbreviated hash (lower case, at least minAbbrev digits)
// among commits and tags that peel to commits.
func (x *resolver) abbrev(prefix string) (plumbing.Hash, error) {
	candidates, err := x.hashesWithPrefix(prefix)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve revision %q: look up abbreviated hash: %w", x.rev, err)
	}
	var matches []plumbing.Hash
	for _, h := range candidates {
		if _, err := x.peelCommit(h); err == nil {
			matches = append(matches, h)
		}
	}
	switch len(matches) {
	case 0:
		return plumbing.ZeroHash, x.errorf(ErrUnknownRevision, "")
	case 1:
		return matches[0], nil
	default:
		names := make([]string, len(matches))
		for i, h := range matches {
			names[i] = short(h)
		}
		return plumbing.ZeroHash, x.errorf(ErrAmbiguousRevision, "matches %s", strings.Join(names, ", "))
	}
}

// hashesWithPrefix lists the objects whose hash starts with prefix (hex, any
// length). go-git's filesystem storage answers from the pack indexes and the
// loose object directory; other storages are scanned.
func (x *resolver) hashesWithPrefix(prefix string) ([]plumbing.Hash, error) {
	b, err := hex.DecodeString(prefix[:len(prefix)&^1])
	if err != nil {
		return nil, err
	}
	type prefixLookup interface {
		HashesWithPrefix(prefix []byte) ([]plumbing.Hash, error)
	}
	var all []plumbing.Hash
	if pl, ok := x.st.(prefixLookup); ok {
		if all, err = pl.HashesWithPrefix(b); err != nil {
			return nil, err
		}
	} else {
		iter, err := x.st.IterEncodedObjects(plumbing.AnyObject)
		if err != nil {
			return nil, err
		}
		err = iter.ForEach(func(o plumbing.EncodedObject) error {
			all = append(all, o.Hash())
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	seen := make(map[plumbing.Hash]bool)
	var out []plumbing.Hash
	for _, h := range all {
		if !seen[h] && strings.HasPrefix(h.String(), prefix) {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out, nil
}

// peelTags follows annotated tags until it reaches an object of another type.
func (x *resolver) peelTags(h plumbing.Hash) (plumbing.Hash, error) {
	for range maxPeel {
		o, err := x.load(h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if o.Type() != plumbing.TagObject {
			return h, nil
		}
		t, err := object.DecodeTag(x.st, o)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("resolve revision %q: decode tag %s: %w", x.rev, h, err)
		}
		h = t.Target
	}
	return plumbing.ZeroHash, x.errorf(ErrUnknownRevision, "tag chain longer than %d", maxPeel)
}

// peelCommit follows annotated tags to a commit.
func (x *resolver) peelCommit(h plumbing.Hash) (*object.Commit, error) {
	h, err := x.peelTags(h)
	if err != nil {
		return nil, err
	}
	o, err := x.load(h)
	if err != nil {
		return nil, err
	}
	if o.Type() != plumbing.CommitObject {
		return nil, x.errorf(ErrUnknownRevision, "%s is a %s, not a commit", short(h), o.Type())
	}
	c, err := object.DecodeCommit(x.st, o)
	if err != nil {
		return nil, fmt.Errorf("resolve revision %q: decode commit %s: %w", x.rev, h, err)
	}
	return c, nil
}

// load reads an object; a missing one makes the revision unknown.
func (x *resolver) load(h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := x.st.EncodedObject(plumbing.AnyObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, x.errorf(ErrUnknownRevision, "object %s not found", h)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve revision %q: read object %s: %w", x.rev, h, err)
	}
	return o, nil
}

// errorf returns sentinel followed by the quoted revision and an optional
// detail: `unknown revision "nope"`, `unknown revision "HEAD~9": …`.
func (x *resolver) errorf(sentinel error, detail string, args ...any) error {
	if detail == "" {
		return fmt.Errorf("%w %q", sentinel, x.rev)
	}
	return fmt.Errorf("%w %q: %s", sentinel, x.rev, fmt.Sprintf(detail, args...))
}

// isPseudoRef reports whether s has the syntax of a ref outside refs/:
// upper case, digits-free, '_' and '-', ending in HEAD.
func isPseudoRef(s string) bool {
	if !strings.HasSuffix(s, "HEAD") {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return s != ""
}

func short(h plumbing.Hash) string { return h.String()[:shortLen] }
