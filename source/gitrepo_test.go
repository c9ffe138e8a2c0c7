package source

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testRepo is a real git repository in a temporary directory, driven by the
// git CLI with a fixed identity, fixed dates and no user or system config,
// so that hashes are the same on every run.
type testRepo struct {
	tb      testing.TB
	dir     string
	commits int // commits made so far, to date the next one
}

// baseTime dates the first commit; each later one is a minute after.
var baseTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestRepo(tb testing.TB) *testRepo {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Skip("git CLI not found")
	}
	r := &testRepo{tb: tb, dir: tb.TempDir()}
	r.git("init", "-q")
	return r
}

// gitIn runs git in dir and returns its trimmed standard output.
func gitIn(tb testing.TB, dir string, env []string, args ...string) string {
	tb.Helper()
	args = append([]string{
		"-c", "init.defaultBranch=main",
		"-c", "commit.gpgsign=false",
		"-c", "tag.gpgsign=false",
		"-c", "advice.nestedTag=false",
		"-c", "advice.detachedHead=false",
		"-c", "gc.auto=0",
	}, args...)
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Author",
		"GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Cy Committer",
		"GIT_COMMITTER_EMAIL=cy@example.com",
		"GIT_TERMINAL_PROMPT=0",
	)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// git runs git in the repository, dating anything it creates at the time
// of the next commit.
func (r *testRepo) git(args ...string) string {
	r.tb.Helper()
	date := baseTime.Add(time.Duration(r.commits) * time.Minute).Format(time.RFC3339)
	return gitIn(r.tb, r.dir, []string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}, args...)
}

// revParse asks git which commit rev names; ok is false if git rejects it.
func (r *testRepo) revParse(rev string) (hash string, ok bool) {
	return revParseIn(r.dir, rev)
}

func revParseIn(dir, rev string) (string, bool) {
	cmd := exec.Command("git", "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

// write writes a file of the work tree, creating its directories.
func (r *testRepo) write(name, content string, mode os.FileMode) {
	r.tb.Helper()
	p := filepath.Join(r.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		r.tb.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile keeps the mode of an existing file
		r.tb.Fatal(err)
	}
}

// commit stages everything and commits; it returns the new commit's hash.
func (r *testRepo) commit(msg string) string {
	r.tb.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
	r.commits++
	return r.git("rev-parse", "HEAD")
}

// fixture is the history most tests share:
//
//	c1 initial ── c2 add api (v0.9) ── c3 scale web (light) ── c4 fix (v1.0, v1.0-nested) ── c5 merge ── c6 docs (main)
//	                                                        └── f1 feature work (feature) ──┘
//
// plus refs/remotes/origin/main at c2 with origin/HEAD pointing to it, and
// an uncommitted change to README.md in the work tree.
type fixture struct {
	*testRepo
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
		os.RemoveAll(f.dir)
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
	if err := os.CopyFS(dir, os.DirFS(tmpl.dir)); err != nil {
		tb.Fatalf("copy fixture: %v", err)
	}
	f := *tmpl
	f.testRepo = &testRepo{tb: tb, dir: dir, commits: tmpl.commits}
	return &f
}

func buildFixture(tb testing.TB, dir string) *fixture {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Skip("git CLI not found")
	}
	f := &fixture{testRepo: &testRepo{tb: tb, dir: dir}}
	f.git("init", "-q")

	f.write("README.md", "# demo v1\n", 0o644)
	f.write("apps/web/deploy.yaml", "kind: Deployment\nreplicas: 1\n", 0o644)
	f.write("bin/run.sh", "#!/bin/sh\necho run\n", 0o755)
	f.c1 = f.commit("initial")

	f.write("README.md", "# demo v2\n", 0o644)
	f.write("apps/api/svc.yaml", "kind: Service\n", 0o644)
	f.write("apps.yaml", "apps: [web, api]\n", 0o644) // git sorts it before the apps/ tree
	f.c2 = f.commit("add api\n\nwith a body that is not part of the subject")
	f.git("tag", "v0.9") // lightweight

	f.write("apps/web/deploy.yaml", "kind: Deployment\nreplicas: 2\n", 0o644)
	f.c3 = f.commit("scale web")
	f.git("tag", "light")

	f.git("switch", "-q", "-c", "feature")
	f.write("feature.txt", "feature\n", 0o644)
	f.f1 = f.commit("feature work")
	f.git("switch", "-q", "main")

	f.write("apps/web/deploy.yaml", "kind: Deployment\nreplicas: 3\n", 0o644)
	f.c4 = f.commit("fix: nasty\nbug in web")
	f.git("tag", "-a", "v1.0", "-m", "release 1.0")
	f.git("tag", "-a", "v1.0-nested", "-m", "a tag of a tag", "v1.0")
	f.tagObject = f.git("rev-parse", "v1.0")

	f.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
	f.commits++
	f.c5 = f.git("rev-parse", "HEAD")

	f.write("docs/guide/intro.md", "hello\n", 0o644)
	if err := os.Symlink("apps/web/deploy.yaml", filepath.Join(f.dir, "link.yaml")); err != nil {
		tb.Fatal(err)
	}
	f.c6 = f.commit("docs")

	f.git("update-ref", "refs/remotes/origin/main", f.c2)
	f.git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")

	f.write("README.md", "# uncommitted\n", 0o644)
	return f
}

// bareClone makes a bare clone of dir; --no-local packs its objects and refs.
func bareClone(tb testing.TB, dir string) string {
	tb.Helper()
	bare := filepath.Join(tb.TempDir(), "repo.git")
	gitIn(tb, dir, nil, "clone", "-q", "--bare", "--no-local", dir, bare)
	return bare
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
