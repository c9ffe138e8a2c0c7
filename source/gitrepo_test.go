package source

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// fixture is the history most tests share:
//
//	c1 initial ── c2 add api (v0.9) ── c3 scale web (light) ── c4 fix (v1.0, v1.0-nested) ── c5 merge ── c6 docs (main)
//	                                                        └── f1 feature work (feature) ──┘
//
// plus refs/remotes/origin/main at c2 with origin/HEAD pointing to it, and
// an uncommitted change to README.md in the work tree.
type fixture struct {
	*testenv.GitRepo
	c1, c2, c3, c4, f1, c5, c6 string
	tagObject                  string // the annotated tag object of v1.0
}

// fixtureTemplate is built once per test binary; each test gets a copy.
var fixtureTemplate struct {
	once sync.Once
	f    *fixture
}

// TestMain removes the fixture template.
func TestMain(m *testing.M) {
	code := m.Run()
	if f := fixtureTemplate.f; f != nil {
		os.RemoveAll(f.Dir)
	}
	os.Exit(code)
}

// newFixture returns a private copy of the fixture repository, which tests
// may change.
func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	fixtureTemplate.once.Do(func() {
		dir, err := os.MkdirTemp("", "kelpie-source-fixture-")
		if err != nil {
			tb.Fatal(err)
		}
		fixtureTemplate.f = buildFixture(tb, dir)
	})
	tmpl := fixtureTemplate.f
	if tmpl == nil {
		tb.Fatal("building the fixture repository failed in an earlier test")
	}
	dir := tb.TempDir()
	if err := os.CopyFS(dir, os.DirFS(tmpl.Dir)); err != nil {
		tb.Fatalf("copy fixture: %v", err)
	}
	f := *tmpl
	f.GitRepo = &testenv.GitRepo{TB: tb, Dir: dir, Commits: tmpl.Commits}
	return &f
}

func buildFixture(tb testing.TB, dir string) *fixture {
	tb.Helper()
	testenv.Binary(tb, "git", "git")
	f := &fixture{GitRepo: &testenv.GitRepo{TB: tb, Dir: dir}}
	f.Git("init", "-q")

	f.Write("README.md", "# demo v1\n")
	f.Write("apps/web/deploy.yaml", "kind: Deployment\nreplicas: 1\n")
	f.WriteMode("bin/run.sh", "#!/bin/sh\necho run\n", 0o755)
	f.c1 = f.Commit("initial")

	f.Write("README.md", "# demo v2\n")
	f.Write("apps/api/svc.yaml", "kind: Service\n")
	f.WriteMode("apps.yaml", "apps: [web, api]\n", 0o644) // git sorts it before the apps/ tree
	f.c2 = f.Commit("add api\n\nwith a body that is not part of the subject")
	f.Git("tag", "v0.9") // lightweight

	f.Write("apps/web/deploy.yaml", "kind: Deployment\nreplicas: 2\n")
	f.c3 = f.Commit("scale web")
	f.Git("tag", "light")

	f.Git("switch", "-q", "-c", "feature")
	f.Write("feature.txt", "feature\n")
	f.f1 = f.Commit("feature work")
	f.Git("switch", "-q", "main")

	f.Write("apps/web/deploy.yaml", "kind: Deployment\nreplicas: 3\n")
	f.c4 = f.Commit("fix: nasty\nbug in web")
	f.Git("tag", "-a", "v1.0", "-m", "release 1.0")
	f.Git("tag", "-a", "v1.0-nested", "-m", "a tag of a tag", "v1.0")
	f.tagObject = f.Git("rev-parse", "v1.0")

	f.Git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
	f.Commits++
	f.c5 = f.Git("rev-parse", "HEAD")

	f.Write("docs/guide/intro.md", "hello\n")
	if err := os.Symlink("apps/web/deploy.yaml", filepath.Join(f.Dir, "link.yaml")); err != nil {
		tb.Fatal(err)
	}
	f.c6 = f.Commit("docs")

	f.Git("update-ref", "refs/remotes/origin/main", f.c2)
	f.Git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")

	f.Write("README.md", "# uncommitted\n")
	return f
}

func mustOpen(tb testing.TB, path string) *Repo {
	tb.Helper()
	r, err := OpenLocal(path)
	if err != nil {
		tb.Fatalf("OpenLocal(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Errorf("Close(%s): %v", path, err)
		}
	})
	return r
}

func mustResolve(tb testing.TB, r *Repo, rev string) Commit {
	tb.Helper()
	c, err := r.Resolve(rev)
	if err != nil {
		tb.Fatalf("Resolve(%q): %v", rev, err)
	}
	return c
}

func short12(h string) string { return fmt.Sprintf("%.12s", h) }
