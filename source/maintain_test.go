package source

import (
	"context"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// TestMaintain fetches one commit at a time, as an agent does, until the
// cache has a pack per fetch; Maintain folds them into one and everything
// still reads.
func TestMaintain(t *testing.T) {
	forEachRepacker(t, testMaintain)
}

// forEachRepacker runs a test with the git binary repacking, and with go-git.
func forEachRepacker(t *testing.T, test func(t *testing.T)) {
	for _, tool := range []string{"git", ""} {
		name := "tool=" + tool
		if tool == "" {
			name = "tool=go-git"
		}
		t.Run(name, func(t *testing.T) {
			defer func(saved string) { gitBinary = saved }(gitBinary)
			gitBinary = tool
			test(t)
		})
	}
}

func testMaintain(t *testing.T) {
	u := newUpstream(t)
	commits := fastImport(t, u.bare, 20, 15)
	r := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}})
	ctx := context.Background()

	applied := ""
	var old Fetched
	for i, c := range commits {
		testenv.Git(t, u.bare, "update-ref", "refs/heads/main", c)
		old = mustFetch(t, r, applied, c)
		applied = c
		if i == 3 {
			if err := r.Maintain(ctx); err != nil { // few packs: nothing to do
				t.Fatal(err)
			}
			if n := len(packs(t, r.cfg.CacheDir)); n != 4 {
				t.Fatalf("Maintain with 4 packs left %d, want them untouched", n)
			}
		}
	}
	if n := len(packs(t, r.cfg.CacheDir)); n != len(commits) {
		t.Fatalf("%d packs after %d fetches, want one each", n, len(commits))
	}

	start := time.Now()
	if err := r.Maintain(ctx); err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	t.Logf("Maintain of %d packs: %v", len(commits), time.Since(start))
	if got := packs(t, r.cfg.CacheDir); len(got) != 1 {
		t.Fatalf("packs after Maintain = %d, want 1", len(got))
	}
	testenv.Git(t, r.cfg.CacheDir, "fsck", "--no-dangling", "--strict")

	// The file system of the last fetch, taken before, still reads.
	if _, err := fs.ReadFile(old.FS, fmt.Sprintf("apps/app-00/obj-%03d.yaml", 14%20)); err != nil {
		t.Errorf("read through an earlier FS after Maintain: %v", err)
	}
	if err := fstestReadAll(old.FS); err != nil {
		t.Errorf("walk an earlier FS after Maintain: %v", err)
	}
	// Fetch still works, incrementally.
	next := u.commitPushOnto(t, commits[len(commits)-1])
	mustFetch(t, r, applied, next)
	if n := len(packs(t, r.cfg.CacheDir)); n != 2 {
		t.Errorf("%d packs after one more fetch, want 2", n)
	}
}

// TestMaintainDropsRewrittenHistory: after a force push, Maintain keeps the
// applied commit (Commit still reads it) and forgets what nothing refers to.
func TestMaintainDropsRewrittenHistory(t *testing.T) {
	forEachRepacker(t, testMaintainDropsRewrittenHistory)
}

func testMaintainDropsRewrittenHistory(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	r := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}, AllowRewrite: true})
	mustFetch(t, r, "", c1)
	var lost []string
	applied := c1
	for i := range maxPacks {
		c := u.commitPush("a.yaml", fmt.Sprintf("lost %d\n", i))
		mustFetch(t, r, applied, c)
		applied = c
		lost = append(lost, c)
	}
	keep := lost[len(lost)-2] // the applied commit when the rewrite comes
	u.Git("reset", "-q", "--hard", c1)
	c2 := u.commitPush("a.yaml", "rewritten\n")
	mustFetch(t, r, keep, c2) // applied is keep: it gets pinned

	if err := r.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Commit(keep); err != nil {
		t.Errorf("Commit(applied before the rewrite) after Maintain: %v", err)
	}
	if _, err := r.Commit(lost[len(lost)-1]); err == nil {
		t.Errorf("a commit nothing refers to survived Maintain")
	}
	if _, err := r.Commit(c2); err != nil {
		t.Errorf("Commit(head): %v", err)
	}
}

// commitPushOnto commits one more change on top of base in the bare
// repository, through the work clone.
func (u *upstream) commitPushOnto(t *testing.T, base string) string {
	t.Helper()
	u.Git("fetch", "-q", "origin", "main")
	u.Git("reset", "-q", "--hard", base)
	return u.commitPush("apps/app-00/new.yaml", "kind: ConfigMap\n")
}

// fstestReadAll reads every file of fsys.
func fstestReadAll(fsys fs.FS) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		_, err = fs.ReadFile(fsys, p)
		return err
	})
}
