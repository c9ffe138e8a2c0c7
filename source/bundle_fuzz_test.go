package source

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// FuzzStageBundle feeds altered git bundles (header and pack: the pack
// guard and go-git's indexer behind it) to StageBundle and Check, against
// a repository that holds the first commit. They must never panic, a
// failed stage must remove its quarantine, and the repository must not
// change (nothing is committed). The seeds are small valid bundles, full
// and incremental, and the bomb of TestBundleBombRefused at 1 MiB; faster
// than FuzzImport, whose inputs carry an image archive.
func FuzzStageBundle(f *testing.F) {
	r := testenv.NewGitRepo(f)
	r.Write("a.yaml", "a: 1\n")
	c1 := r.Commit("one")
	r.Git("tag", "-a", "-m", "v1", "v1")
	r.Write("b/b.yaml", "b: 1\n")
	c2 := r.Commit("two")
	r.Write("a.yaml", "a: 2\n")
	c3 := r.Commit("three")
	bundle := func(refs []BundleRef, since ...string) []byte {
		repo := mustOpen(f, r.Dir)
		defer repo.Close()
		var buf bytes.Buffer
		if _, err := repo.WriteBundle(&buf, refs, since); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	f.Add(bundle([]BundleRef{{Name: "refs/heads/main", Commit: c1}}))
	f.Add(bundle([]BundleRef{{Name: "refs/heads/main", Commit: c3}}, c1))
	f.Add(bundle([]BundleRef{{Name: "refs/heads/main", Commit: c2}, {Name: "refs/heads/next", Commit: c3}}))
	bomb, blob := testenv.ZeroBlobPack(f, 1<<20)
	f.Add(testenv.GitBundle(bomb, blob+" refs/heads/main"))

	gitDir := testenv.BareClone(f, r.Dir)
	testenv.Git(f, gitDir, "update-ref", "refs/heads/main", c1)
	before := testenv.TreeDigest(f, gitDir)
	old := defaultPackLimits
	defaultPackLimits = packLimits{object: 64 << 10, pack: 1 << 20} // a bomb is cheap to refuse
	f.Cleanup(func() { defaultPackLimits = old })

	f.Fuzz(func(t *testing.T, data []byte) {
		staging := filepath.Join(t.TempDir(), "staging.git")
		s, stageErr := StageBundle(gitDir, staging, bytes.NewReader(data))
		if stageErr == nil {
			_, _ = s.Check(BundleCheck{})
			s.Close()
		}
		if _, err := os.Stat(staging); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the quarantine %s is left (stage: %v)", staging, stageErr)
		}
		if testenv.TreeDigest(t, gitDir) != before {
			t.Fatal("staging changed the repository")
		}
	})
}
