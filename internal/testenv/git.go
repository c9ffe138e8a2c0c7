package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// GitEpoch dates the first commit of a GitRepo; each later one is a minute
// after, so that the same steps give the same hashes on every run.
var GitEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// GitRepo is a real git repository in a temporary directory, driven by the
// git CLI as an operator would, with a fixed identity (author Ada Author,
// committer Cy Committer), fixed dates, no user or system configuration and
// main as the initial branch.
type GitRepo struct {
	TB      testing.TB
	Dir     string // the work tree
	Commits int    // commits made so far through Commit, to date the next one
}

// NewGitRepo runs git init in a fresh temporary directory, or ends the test
// through Missing when there is no git CLI.
func NewGitRepo(tb testing.TB) *GitRepo {
	tb.Helper()
	Binary(tb, "git", "git")
	r := &GitRepo{TB: tb, Dir: tb.TempDir()}
	r.Git("init", "-q")
	return r
}

// NewBareRepo makes an empty bare repository (site.git in a temporary
// directory), as a git host holds one, and returns its path.
func NewBareRepo(tb testing.TB) string {
	tb.Helper()
	Binary(tb, "git", "git")
	bare := filepath.Join(tb.TempDir(), "site.git")
	Git(tb, filepath.Dir(bare), "init", "-q", "--bare", bare)
	return bare
}

// BareClone makes a bare clone of the repository at dir; --no-local packs
// its objects and refs as a fetch over the network would.
func BareClone(tb testing.TB, dir string) string {
	tb.Helper()
	bare := filepath.Join(tb.TempDir(), "repo.git")
	Git(tb, dir, "clone", "-q", "--bare", "--no-local", dir, bare)
	return bare
}

// Git runs git in dir with the fixed identity and configuration of a
// GitRepo, anything it creates dated at GitEpoch, and returns its trimmed
// standard output; it fails the test when git fails.
func Git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	return gitAt(tb, dir, GitEpoch, args...)
}

// gitAt runs git in dir, dating what it creates at when.
func gitAt(tb testing.TB, dir string, when time.Time, args ...string) string {
	tb.Helper()
	date := when.Format(time.RFC3339)
	cmd := exec.Command("git", append(gitConfig, args...)...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		tb.Fatalf("git %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// gitConfig is the configuration every git command of a test runs with.
var gitConfig = []string{
	"-c", "init.defaultBranch=main",
	"-c", "commit.gpgsign=false",
	"-c", "tag.gpgsign=false",
	"-c", "advice.nestedTag=false",
	"-c", "advice.detachedHead=false",
	"-c", "gc.auto=0",
}

// gitEnv is the environment of a test's git: no user or system
// configuration, a fixed identity, never a prompt.
func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Author",
		"GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Cy Committer",
		"GIT_COMMITTER_EMAIL=cy@example.com",
		"GIT_TERMINAL_PROMPT=0",
	)
}

// RevParse asks git in dir which commit rev names; ok is false when git
// rejects it.
func RevParse(dir, rev string) (hash string, ok bool) {
	cmd := exec.Command("git", "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

// Git runs git in the work tree, dating anything it creates at the time of
// the next commit, and returns its trimmed standard output.
func (r *GitRepo) Git(args ...string) string {
	r.TB.Helper()
	return gitAt(r.TB, r.Dir, GitEpoch.Add(time.Duration(r.Commits)*time.Minute), args...)
}

// RevParse asks git which commit rev names; ok is false when git rejects it.
func (r *GitRepo) RevParse(rev string) (hash string, ok bool) { return RevParse(r.Dir, rev) }

// Write writes a file of the work tree (mode 0644), creating directories.
func (r *GitRepo) Write(name, content string) {
	r.TB.Helper()
	r.WriteMode(name, content, 0o644)
}

// WriteMode writes a file of the work tree with mode, creating directories.
func (r *GitRepo) WriteMode(name, content string, mode os.FileMode) {
	r.TB.Helper()
	p := filepath.Join(r.Dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.TB.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		r.TB.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile keeps the mode of an existing file
		r.TB.Fatal(err)
	}
}

// Read returns a file of the work tree.
func (r *GitRepo) Read(name string) string {
	r.TB.Helper()
	data, err := os.ReadFile(filepath.Join(r.Dir, filepath.FromSlash(name)))
	if err != nil {
		r.TB.Fatal(err)
	}
	return string(data)
}

// CopyTree copies the files under the directory src into the work tree at
// dst.
func (r *GitRepo) CopyTree(src, dst string) {
	r.TB.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r.Write(filepath.ToSlash(filepath.Join(dst, rel)), string(data))
		return nil
	})
	if err != nil {
		r.TB.Fatal(err)
	}
}

// Commit stages everything and commits; it returns the new commit's hash.
func (r *GitRepo) Commit(msg string) string {
	r.TB.Helper()
	r.Git("add", "-A")
	r.Git("commit", "-q", "-m", msg)
	r.Commits++
	return r.Git("rev-parse", "HEAD")
}

// Push pushes HEAD to the branch main of the repository at remote (a path
// or URL), forced.
func (r *GitRepo) Push(remote string) {
	r.TB.Helper()
	r.Git("push", "-q", "--force", remote, "HEAD:refs/heads/main")
}
