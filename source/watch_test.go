package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// watching runs WatchRefs on paths for the test's lifetime.
type watching struct {
	t    *testing.T
	out  chan Trigger
	done chan error
}

func watch(t *testing.T, paths ...string) *watching {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{t: t, out: make(chan Trigger, 1), done: make(chan error, 1)}
	go func() { w.done <- WatchRefs(ctx, paths, w.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			if err != nil {
				t.Errorf("WatchRefs: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("WatchRefs did not return after its context ended")
		}
	})
	// Wait for its watches on the repositories there are already.
	var dirs []string
	for _, p := range paths {
		dirs = append(dirs, testenv.RefWatchDirs(p)...)
	}
	testenv.WaitWatched(t, 5*time.Second, dirs...)
	return w
}

// expect waits up to a second for a trigger whose reason contains want.
func (w *watching) expect(what, want string) time.Duration {
	w.t.Helper()
	return w.expectWithin(time.Second, what, want)
}

// expectWithin waits up to limit for a trigger whose reason contains want.
func (w *watching) expectWithin(limit time.Duration, what, want string) time.Duration {
	w.t.Helper()
	start := time.Now()
	deadline := time.After(limit)
	for {
		select {
		case tr := <-w.out:
			if strings.Contains(tr.Reason, want) {
				return time.Since(start)
			}
			w.t.Logf("%s: trigger %q, waiting for one with %q", what, tr.Reason, want)
		case <-deadline:
			w.t.Fatalf("%s: no trigger with %q within %v", what, want, limit)
		case err := <-w.done:
			w.t.Fatalf("%s: WatchRefs returned %v", what, err)
		}
	}
}

// quiet drains pending triggers and checks none comes for a while.
func (w *watching) quiet(what string) {
	w.t.Helper()
	time.Sleep(2 * watchDebounce) // part of the check: time passes, then nothing may come
	for {
		select {
		case <-w.out:
			continue
		default:
		}
		break
	}
	select {
	case tr := <-w.out:
		w.t.Errorf("%s: unexpected trigger %q", what, tr.Reason)
	case <-time.After(4 * watchDebounce):
	}
}

func TestWatchRefsBare(t *testing.T) {
	u := newUpstream(t)
	u.commitPush("a.yaml", "v1\n")
	w := watch(t, u.bare)

	u.Write("a.yaml", "v2\n")
	u.Commit("v2")
	start := time.Now()
	u.push()
	pushed := time.Since(start)
	d := w.expect("push", "fsnotify refs/heads/main")
	t.Logf("git push took %v; the trigger came %v after it returned", pushed, d)

	// A new branch in a new directory under refs/heads.
	u.Git("push", "-q", "origin", "HEAD:refs/heads/team/feature")
	w.expect("push to a nested branch", "refs/heads/team") // the new directory comes first
	// And a later push to it: its directory is watched now.
	u.Write("a.yaml", "v3\n")
	u.Commit("v3")
	u.Git("push", "-q", "origin", "HEAD:refs/heads/team/feature")
	w.expect("second push to the nested branch", "refs/heads/team/feature")
}

func TestWatchRefsGC(t *testing.T) {
	u := newUpstream(t)
	u.commitPush("a.yaml", "v1\n")
	u.Git("push", "-q", "origin", "HEAD:refs/heads/team/x")
	w := watch(t, u.bare)
	w.quiet("idle")

	testenv.Git(t, u.bare, "gc", "-q", "--prune=now")
	if _, err := os.Stat(filepath.Join(u.bare, "packed-refs")); err != nil {
		t.Fatalf("git gc did not pack refs: %v", err)
	}
	w.expect("git gc", "fsnotify ")
	w.quiet("after gc")

	// A push after gc: refs/heads/team was removed by gc and comes back.
	u.Write("a.yaml", "v2\n")
	u.Commit("v2")
	u.Git("push", "-q", "origin", "HEAD:refs/heads/team/x")
	w.expect("push after gc", "refs/heads/team")
	u.Git("push", "-q", "origin", "HEAD:refs/heads/main")
	w.expect("push of main after gc", "refs/heads/main")
}

func TestWatchRefsWorkTree(t *testing.T) {
	r := testenv.NewGitRepo(t)
	r.Write("a.yaml", "v1\n")
	r.Commit("v1")
	w := watch(t, r.Dir)

	r.Write("a.yaml", "v2\n")
	r.Git("add", "-A") // the index changes: no trigger
	w.quiet("git add")
	r.Git("commit", "-q", "-m", "v2")
	w.expect("commit", "refs/heads/main")
	r.Git("switch", "-q", "-c", "other")
	w.expect("switch", "fsnotify ")
	w.quiet("switched")
	r.Git("switch", "-q", "main") // HEAD alone changes
	w.expect("switch back", "HEAD")
}

// TestWatchRefsLater: a path that is not a repository yet is watched once it
// is one, and a repository deleted and made again is watched again.
func TestWatchRefsLater(t *testing.T) {
	dir := t.TempDir()
	bare := filepath.Join(dir, "later.git")
	w := watch(t, bare)

	testenv.Git(t, dir, "init", "-q", "--bare", bare)
	w.expectWithin(3*watchRescan, "repository created", bare) // found by the rescan
	w.quiet("created")

	u := newUpstream(t)
	u.Git("remote", "set-url", "origin", bare)
	u.commitPush("a.yaml", "v1\n")
	w.expect("push", "refs/heads/main")

	if err := os.RemoveAll(bare); err != nil {
		t.Fatal(err)
	}
	w.expect("repository deleted", "fsnotify ")
	testenv.Git(t, dir, "init", "-q", "--bare", bare)
	w.expectWithin(3*watchRescan, "repository recreated", bare)
	w.quiet("recreated")
	u.push()
	w.expect("push into the new repository", "refs/heads/main")
}

func TestWatchRefsDropsWhenFull(t *testing.T) {
	u := newUpstream(t)
	u.commitPush("a.yaml", "v1\n")
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Trigger) // nobody reads: every send must be dropped
	done := make(chan error, 1)
	go func() { done <- WatchRefs(ctx, []string{u.bare}, out) }()
	testenv.WaitWatched(t, 5*time.Second, testenv.RefWatchDirs(u.bare)...)
	for i := range 3 {
		u.Write("a.yaml", strings.Repeat("x", i))
		u.Commit("x")
		u.push()
	}
	time.Sleep(2 * watchDebounce) // part of the check: the watcher tries to send, and must not block
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchRefs blocked on a full channel")
	}
}
