package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// upstream is a bare repository on disk, as a git host or a mirror on this
// host would hold it, and a work clone that commits with the git CLI and
// pushes to it.
type upstream struct {
	*testenv.GitRepo        // the work clone
	bare             string // the bare repository
}

func newUpstream(tb testing.TB) *upstream {
	tb.Helper()
	r := testenv.NewGitRepo(tb)
	bare := filepath.Join(tb.TempDir(), "site.git")
	testenv.Git(tb, r.Dir, "init", "-q", "--bare", bare)
	r.Git("remote", "add", "origin", bare)
	return &upstream{GitRepo: r, bare: bare}
}

// commitPush writes a file, commits and pushes main; it returns the commit.
func (u *upstream) commitPush(name, content string) string {
	u.TB.Helper()
	u.Write(name, content)
	h := u.Commit("change " + name)
	u.push()
	return h
}

// push pushes the work clone's HEAD to main, forced.
func (u *upstream) push() {
	u.TB.Helper()
	u.Git("push", "-q", "--force", "origin", "HEAD:refs/heads/main")
}

// newTestRemote makes a Remote with a fresh cache unless cfg names one.
func newTestRemote(tb testing.TB, cfg RemoteConfig) *Remote {
	tb.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(tb.TempDir(), "cache")
	}
	r, err := NewRemote(cfg)
	if err != nil {
		tb.Fatalf("NewRemote: %v", err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// mustFetch fetches and checks the head is want.
func mustFetch(tb testing.TB, r *Remote, applied, want string) Fetched {
	tb.Helper()
	f, err := r.Fetch(context.Background(), applied)
	if err != nil {
		tb.Fatalf("Fetch(applied %.12s): %v", applied, err)
	}
	if f.Commit.Hash != want {
		tb.Fatalf("Fetch(applied %.12s) = %s, want %s", applied, f.Commit.Hash, want)
	}
	return f
}

// fetchErr fetches and checks that it fails with an error wrapping want
// whose message contains every one of parts.
func fetchErr(tb testing.TB, r *Remote, applied string, want error, parts ...string) error {
	tb.Helper()
	f, err := r.Fetch(context.Background(), applied)
	if err == nil {
		tb.Fatalf("Fetch(applied %.12s) = %s, want error %v", applied, f.Commit.Hash, want)
	}
	if want != nil && !errors.Is(err, want) {
		tb.Fatalf("Fetch(applied %.12s) error = %v, want one wrapping %v", applied, err, want)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			tb.Errorf("Fetch error %q does not mention %q", err, p)
		}
	}
	return err
}

// packs lists the pack files of a cache.
func packs(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// treeFiles lists every file of a cache directory with its size and time,
// to show a fetch wrote nothing.
func treeFiles(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			out[p] = fmt.Sprintf("%d %s", fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// fastImport makes n commits on main in repository dir with git
// fast-import, quickly: the first writes files manifests, each later one
// changes one of them. It returns the commits, oldest first.
func fastImport(tb testing.TB, dir string, files, n int) []string {
	tb.Helper()
	var b strings.Builder
	when := testenv.GitEpoch.Unix()
	for i := range n {
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\n", i+1)
		fmt.Fprintf(&b, "author Ada Author <ada@example.com> %d +0000\n", when+int64(i)*60)
		fmt.Fprintf(&b, "committer Cy Committer <cy@example.com> %d +0000\n", when+int64(i)*60)
		msg := fmt.Sprintf("commit %d\n", i)
		fmt.Fprintf(&b, "data %d\n%s", len(msg), msg)
		if i > 0 {
			fmt.Fprintf(&b, "from :%d\n", i)
		}
		for f := range files {
			if i > 0 && f != i%files {
				continue
			}
			content := manifest(f, i)
			fmt.Fprintf(&b, "M 100644 inline apps/app-%02d/obj-%03d.yaml\ndata %d\n%s\n", f/20, f, len(content), content)
		}
	}
	cmd := exec.Command("git", "fast-import", "--quiet", "--force")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("git fast-import: %v\n%s", err, out)
	}
	return strings.Fields(testenv.Git(tb, dir, "rev-list", "--reverse", "main"))
}

// manifest is a Deployment of about 1 KiB, revision rev of object f.
func manifest(f, rev int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%03d\n  annotations:\n    rev: \"%d\"\nspec:\n", f, rev)
	for line := 0; sb.Len() < 1024; line++ {
		fmt.Fprintf(&sb, "  # line %d of app %d\n", line, f)
	}
	return sb.String()
}
