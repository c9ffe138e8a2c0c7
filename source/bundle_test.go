package source

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// writeBundleFile writes a bundle of refs (name → commit) from the repository
// at dir into a file and returns its path and header.
func writeBundleFile(t *testing.T, dir string, refs []BundleRef, since ...string) (string, BundleHeader) {
	t.Helper()
	repo := mustOpen(t, dir)
	defer repo.Close()
	var buf bytes.Buffer
	hdr, err := repo.WriteBundle(&buf, refs, since)
	if err != nil {
		t.Fatalf("WriteBundle: %v", err)
	}
	file := filepath.Join(t.TempDir(), "b.bundle")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, hdr
}

// importBundleFile stages and commits a bundle file into gitDir.
func importBundleFile(t *testing.T, gitDir, file string, check BundleCheck) ([]RefUpdate, error) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	staging := filepath.Join(t.TempDir(), "staging.git")
	s, err := StageBundle(gitDir, staging, f)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ups, err := s.Check(check)
	if err != nil {
		return nil, err
	}
	return ups, s.Commit()
}

func TestBundleGitCompatible(t *testing.T) {
	r := testenv.NewGitRepo(t)
	r.Write("a.yaml", "a: 1\n")
	c1 := r.Commit("one")
	r.Write("b.yaml", "b: 1\n")
	c2 := r.Commit("two")

	full, hdr := writeBundleFile(t, r.Dir, []BundleRef{{Name: "refs/heads/main", Commit: c2}})
	if len(hdr.Prerequisites) != 0 {
		t.Fatalf("full bundle has prerequisites %v", hdr.Prerequisites)
	}
	// git itself reads it: verify, and clone from it.
	out := testenv.Git(t, r.Dir, "bundle", "verify", full)
	t.Logf("git bundle verify: %s", out)
	clone := filepath.Join(t.TempDir(), "clone")
	testenv.Git(t, r.Dir, "clone", "-q", "--bare", full, clone)
	if got, _ := testenv.RevParse(clone, "refs/heads/main"); got != c2 {
		t.Fatalf("clone of bundle: main = %s, want %s", got, c2)
	}

	// An incremental bundle names c1 as prerequisite and git fetches it.
	r.Write("a.yaml", "a: 2\n")
	c3 := r.Commit("three")
	inc, hdr := writeBundleFile(t, r.Dir, []BundleRef{{Name: "refs/heads/main", Commit: c3}}, c2, strings.Repeat("0", 40))
	if len(hdr.Prerequisites) != 1 || hdr.Prerequisites[0] != c2 {
		t.Fatalf("prerequisites = %v, want [%s]", hdr.Prerequisites, c2)
	}
	testenv.Git(t, clone, "bundle", "verify", inc)
	testenv.Git(t, clone, "fetch", "-q", inc, "refs/heads/main:refs/heads/main")
	if got, _ := testenv.RevParse(clone, "refs/heads/main"); got != c3 {
		t.Fatalf("fetch of incremental bundle: main = %s, want %s", got, c3)
	}
	_ = c1

	// And ReadBundleHeader reads what git writes.
	gitb := filepath.Join(t.TempDir(), "git.bundle")
	testenv.Git(t, r.Dir, "bundle", "create", "-q", gitb, "main")
	f, err := os.Open(gitb)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := ReadBundleHeader(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Refs) != 1 || h.Refs[0] != (BundleRef{Name: "refs/heads/main", Commit: c3}) {
		t.Fatalf("header of git's bundle: %+v", h)
	}
}

func TestBundleImport(t *testing.T) {
	r := testenv.NewGitRepo(t)
	r.Write("a.yaml", "a: 1\n")
	c1 := r.Commit("one")
	r.Git("tag", "v1")
	r.Write("b.yaml", "b: 1\n")
	c2 := r.Commit("two")
	mirror := filepath.Join(t.TempDir(), "site.git")

	full, _ := writeBundleFile(t, r.Dir, []BundleRef{{Name: "refs/heads/main", Commit: c2}, {Name: "refs/tags/v1", Commit: c1}})
	ups, err := importBundleFile(t, mirror, full, BundleCheck{})
	if err != nil {
		t.Fatalf("import into a new mirror: %v", err)
	}
	if len(ups) != 2 || ups[0].Old != "" || ups[0].New != c2 {
		t.Fatalf("updates = %+v", ups)
	}
	if got, _ := testenv.RevParse(mirror, "main"); got != c2 {
		t.Fatalf("mirror main = %s, want %s", got, c2)
	}
	if got := testenv.Git(t, mirror, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
		t.Fatalf("mirror HEAD = %s", got)
	}
	testenv.Git(t, mirror, "fsck", "--no-progress")

	// Incremental: only the new commit, checked against the mirror.
	r.Write("a.yaml", "a: 2\n")
	c3 := r.Commit("three")
	inc, _ := writeBundleFile(t, r.Dir, []BundleRef{{Name: "refs/heads/main", Commit: c3}}, c2)
	ups, err = importBundleFile(t, mirror, inc, BundleCheck{})
	if err != nil {
		t.Fatalf("incremental import: %v", err)
	}
	if ups[0].Old != c2 || ups[0].New != c3 || ups[0].Forced {
		t.Fatalf("updates = %+v", ups)
	}
	if got, _ := testenv.RevParse(mirror, "main"); got != c3 {
		t.Fatalf("mirror main = %s, want %s", got, c3)
	}
	if got, _ := testenv.RevParse(mirror, "v1"); got != c1 {
		t.Fatalf("mirror v1 = %s, want %s (kept)", got, c1)
	}
	testenv.Git(t, mirror, "fsck", "--no-progress")

	// A rewritten history is refused, and accepted with Force.
	r.Git("reset", "-q", "--hard", c2)
	r.Write("a.yaml", "a: forked\n")
	fork := r.Commit("fork")
	fb, _ := writeBundleFile(t, r.Dir, []BundleRef{{Name: "refs/heads/main", Commit: fork}})
	before := treeFiles(t, mirror)
	if _, err := importBundleFile(t, mirror, fb, BundleCheck{}); !errors.Is(err, ErrNotFastForward) {
		t.Fatalf("non-descending import: err = %v, want ErrNotFastForward", err)
	}
	if after := treeFiles(t, mirror); !mapsEqual(before, after) {
		t.Fatalf("refused import changed the mirror")
	}
	ups, err = importBundleFile(t, mirror, fb, BundleCheck{Force: true})
	if err != nil || !ups[0].Forced {
		t.Fatalf("forced import: %+v, %v", ups, err)
	}
	if got, _ := testenv.RevParse(mirror, "main"); got != fork {
		t.Fatalf("mirror main = %s, want %s", got, fork)
	}

	// A bundle whose prerequisite the mirror lacks is refused at once.
	other := testenv.NewGitRepo(t)
	other.Write("x", "x")
	o1 := other.Commit("x1")
	other.Write("x", "y")
	o2 := other.Commit("x2")
	ob, _ := writeBundleFile(t, other.Dir, []BundleRef{{Name: "refs/heads/main", Commit: o2}}, o1)
	if _, err := importBundleFile(t, mirror, ob, BundleCheck{}); !errors.Is(err, ErrMissingPrerequisite) {
		t.Fatalf("import without prerequisite: err = %v", err)
	}

	repo := mustOpen(t, mirror)
	defer repo.Close()
	refs, err := repo.ListRefs()
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0].Name != "refs/heads/main" || refs[0].Commits != 3 || refs[1].Commit.Hash != c1 {
		t.Fatalf("ListRefs = %+v", refs)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
