package source

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// TestResolveMatchesGit resolves every supported syntax in a repository with
// loose objects and in a packed bare clone, and compares with git rev-parse.
func TestResolveMatchesGit(t *testing.T) {
	f := newFixture(t)
	bare := testenv.BareClone(t, f.Dir)

	revs := []string{
		"HEAD", "@", "main", "feature", "light",
		"refs/heads/main", "heads/main", "refs/heads/feature",
		"origin/main", "origin", "refs/remotes/origin/main",
		"v1.0", "v0.9", "v1.0-nested", "refs/tags/v1.0", "tags/v1.0", "refs/tags/v0.9",
		"HEAD~", "HEAD~1", "HEAD~2", "HEAD~3", "HEAD^", "HEAD^^", "main^", "main^1",
		"HEAD~1^2", "HEAD~1^2~1", "main~1^0", "HEAD^0", "v1.0~2", "v1.0^", "v1.0-nested~1",
		"v1.0^{}", "v1.0^{commit}", "v1.0-nested^{}", "main^{commit}~1", "v1.0^{object}",
		"HEAD^{/nasty}", "HEAD^{/^scale}", "main^{/!-merge}", "v1.0~1^{/add}",
		f.c1, strings.ToUpper(f.c2), f.tagObject,
		f.c3[:4], f.c3[:5], f.c3[:7], f.c3[:12], f.c3[:39], strings.ToUpper(f.c3[:8]),
		f.c4[:7] + "~1", f.tagObject[:10], f.tagObject[:10] + "~1",
	}
	for _, repo := range []struct{ name, path string }{{"loose", f.Dir}, {"packed bare", bare}} {
		r := mustOpen(t, repo.path)
		for _, rev := range revs {
			t.Run(repo.name+"/"+rev, func(t *testing.T) {
				want, ok := testenv.RevParse(repo.path, rev)
				got, err := r.Resolve(rev)
				if !ok {
					// refs/remotes are not cloned: both must reject them.
					if !errors.Is(err, ErrUnknownRevision) {
						t.Fatalf("git rejects %q; Resolve = %v, %v; want ErrUnknownRevision", rev, got, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Resolve(%q): %v (git: %s)", rev, err, want)
				}
				if got.Hash != want {
					t.Fatalf("Resolve(%q) = %s, git rev-parse = %s", rev, got.Hash, want)
				}
			})
		}
	}
}

// TestResolveExpected pins a few results to the fixture's history, so that
// the test above cannot pass by git and Resolve agreeing on nonsense.
func TestResolveExpected(t *testing.T) {
	f := newFixture(t)
	r := mustOpen(t, f.Dir)
	tests := []struct{ rev, want string }{
		{"main", f.c6},
		{"HEAD~1", f.c5},
		{"main~1^2", f.f1},
		{"HEAD~1^1", f.c4},
		{"v1.0", f.c4},
		{"v1.0-nested", f.c4},
		{"v1.0~2", f.c2},
		{"v0.9", f.c2},
		{"light", f.c3},
		{"origin/main", f.c2},
		{"feature", f.f1},
		{f.c1[:4], f.c1},
		{"HEAD^{/nasty}", f.c4},
	}
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			if got := mustResolve(t, r, tt.rev); got.Hash != tt.want {
				t.Fatalf("Resolve(%q) = %s, want %s", tt.rev, got.Hash, tt.want)
			}
		})
	}
}

func TestResolveCommitFields(t *testing.T) {
	f := newFixture(t)
	r := mustOpen(t, f.Dir)
	tests := []struct {
		rev  string
		want Commit
	}{
		{"v0.9", Commit{
			Hash: f.c2, Short: short12(f.c2), Subject: "add api", Author: "Ada Author <ada@example.com>",
			When: testenv.GitEpoch.Add(1 * time.Minute),
		}},
		{"v1.0", Commit{
			Hash: f.c4, Short: short12(f.c4), Subject: "fix: nasty bug in web", Author: "Ada Author <ada@example.com>",
			When: testenv.GitEpoch.Add(4 * time.Minute),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			got := mustResolve(t, r, tt.rev)
			if !got.When.Equal(tt.want.When) {
				t.Errorf("When = %v, want %v", got.When, tt.want.When)
			}
			got.When, tt.want.When = time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("Resolve(%q) =\n%+v\nwant\n%+v", tt.rev, got, tt.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	f := newFixture(t)
	r := mustOpen(t, f.Dir)
	tests := []struct {
		rev     string
		want    error
		message string // exact message, when it matters
	}{
		{"nope", ErrUnknownRevision, `unknown revision "nope"`},
		{"", ErrUnknownRevision, `unknown revision ""`},
		{"nope~2", ErrUnknownRevision, `unknown revision "nope~2"`},
		{"HEAD~50", ErrUnknownRevision, ""},
		{"main^3", ErrUnknownRevision, ""},
		{f.c1 + "~1", ErrUnknownRevision, ""},
		{f.c1[:3], ErrUnknownRevision, ""},                          // too short to be a hash
		{strings.Repeat("0", 40), ErrUnknownRevision, ""},           // well-formed, absent
		{"deadbeef", ErrUnknownRevision, ""},                        // no such prefix (almost surely)
		{"HEAD^{/no commit says this}", ErrUnknownRevision, ""},     //
		{"config", ErrUnknownRevision, `unknown revision "config"`}, // a file in .git, not a ref
		{"refs/heads", ErrUnknownRevision, ""},                      // a directory of refs
		{"refs/heads/./main", ErrUnknownRevision, ""},               // not a valid ref name
		{"../HEAD", ErrUnsupportedRevision, ""},                     // ".." is range syntax
		{"HEAD^{tree}", ErrUnsupportedRevision, ""},
		{"main@{1}", ErrUnsupportedRevision, ""},
		{"@{upstream}", ErrUnsupportedRevision, ""},
		{"main..feature", ErrUnsupportedRevision, ""},
		{"HEAD:README.md", ErrUnsupportedRevision, ""},
		{":/nasty", ErrUnsupportedRevision, ""},
	}
	for _, tt := range tests {
		t.Run(tt.rev, func(t *testing.T) {
			c, err := r.Resolve(tt.rev)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Resolve(%q) = %v, %v; want %v", tt.rev, c, err, tt.want)
			}
			if tt.message != "" && err.Error() != tt.message {
				t.Fatalf("Resolve(%q) error = %q, want %q", tt.rev, err, tt.message)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.rev)) {
				t.Fatalf("error %q does not name the revision", err)
			}
		})
	}
}

// TestResolveTreeOrBlobIsNotACommit: a hash that names a tree is rejected.
func TestResolveTreeOrBlobIsNotACommit(t *testing.T) {
	f := newFixture(t)
	r := mustOpen(t, f.Dir)
	for _, h := range []string{f.Git("rev-parse", "HEAD^{tree}"), f.Git("rev-parse", "HEAD:bin/run.sh")} {
		if _, err := r.Resolve(h); !errors.Is(err, ErrUnknownRevision) || !strings.Contains(err.Error(), "not a commit") {
			t.Errorf("Resolve(%s) error = %v, want a not-a-commit ErrUnknownRevision", h, err)
		}
	}
}

// TestResolveRefBeforeAbbrev: git prefers a ref over an abbreviated hash of
// the same spelling, but a full hash over a ref.
func TestResolveRefBeforeAbbrev(t *testing.T) {
	f := newFixture(t)
	f.Git("branch", f.c1[:8], f.c6) // a branch named like c1's abbreviation
	r := mustOpen(t, f.Dir)
	if got := mustResolve(t, r, f.c1[:8]); got.Hash != f.c6 {
		t.Errorf("Resolve(%s) = %s, want the branch's %s", f.c1[:8], got.Hash, f.c6)
	}
	if want, _ := f.RevParse(f.c1[:8]); want != f.c6 {
		t.Errorf("git rev-parse %s = %s; the test's premise is wrong", f.c1[:8], want)
	}
}

// TestResolveAmbiguous writes commits until two share a 4-digit prefix:
// that prefix is ambiguous, for Resolve as for git, and longer ones are not.
func TestResolveAmbiguous(t *testing.T) {
	f := newFixture(t)
	r := mustOpen(t, f.Dir)
	st := r.repo.Storer
	tree := plumbing.NewHash(f.Git("rev-parse", "HEAD^{tree}"))

	seen := make(map[string]plumbing.EncodedObject)
	var pair [2]plumbing.EncodedObject
	for i := 0; pair[0] == nil; i++ {
		if i == 100000 {
			t.Fatal("no 4-digit collision in 100000 commits")
		}
		sig := object.Signature{Name: "A", Email: "a@example.com", When: testenv.GitEpoch}
		c := &object.Commit{Author: sig, Committer: sig, TreeHash: tree, Message: fmt.Sprintf("synthetic %d\n", i)}
		o := st.NewEncodedObject()
		if err := c.Encode(o); err != nil {
			t.Fatal(err)
		}
		p := o.Hash().String()[:4]
		if other, ok := seen[p]; ok {
			pair = [2]plumbing.EncodedObject{other, o}
		}
		seen[p] = o
	}
	for _, o := range pair {
		if _, err := st.SetEncodedObject(o); err != nil {
			t.Fatal(err)
		}
	}

	prefix := pair[0].Hash().String()[:4]
	if _, ok := f.RevParse(prefix); ok {
		t.Fatalf("git resolves %s; the test's premise is wrong", prefix)
	}
	_, err := r.Resolve(prefix)
	if !errors.Is(err, ErrAmbiguousRevision) {
		t.Fatalf("Resolve(%s) = %v, want ErrAmbiguousRevision", prefix, err)
	}
	for _, o := range pair {
		if !strings.Contains(err.Error(), short(o.Hash())) {
			t.Errorf("error %q does not list candidate %s", err, short(o.Hash()))
		}
		h := o.Hash().String()
		if got := mustResolve(t, r, h[:12]); got.Hash != h {
			t.Errorf("Resolve(%s) = %s, want %s", h[:12], got.Hash, h)
		}
	}
}
