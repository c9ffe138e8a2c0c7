package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// watchDebounce gathers the burst of events one push makes (lock file,
	// rename, HEAD, packed-refs) into one trigger; a push still triggers
	// within a tenth of a second.
	watchDebounce = 50 * time.Millisecond
	// watchRescan is how often WatchRefs retries a path that is not (or is
	// no longer) a watchable repository: a mirror plugged in later, a
	// repository deleted and created again.
	watchRescan = time.Second
)

// WatchRefs watches the refs of repositories on this host and sends a
// Trigger to out when they change, until ctx ends. paths are repositories,
// bare or not (a work tree root, its .git directory, or a bare repository;
// no parent directory is searched), as Remote.LocalPaths returns them.
//
// It watches, with fsnotify, the loose refs under refs/ (every directory,
// recursively, adding directories as git creates them), packed-refs and
// HEAD, so a `git push` into a bare repository on this host, a commit in a
// work tree, and a `git gc` that packs refs all fire. Lock files are
// ignored. Events are gathered for watchDebounce after the first one and
// sent as one Trigger ("fsnotify refs/heads/main"), without blocking: when
// out is full the trigger is dropped, since a sync is already due.
//
// A path that is not a repository yet, or whose repository is deleted or
// replaced, is retried every second and watched again once it is there
// (with a trigger, since its refs may have changed unseen); so is every
// path after the kernel's event queue overflowed.
//
// WatchRefs returns nil when ctx ends, and an error only when the watcher
// cannot be created or fails (the inotify limits: fs.inotify.max_user_watches
// and max_user_instances).
func WatchRefs(ctx context.Context, paths []string, out chan<- Trigger) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch refs: %w", err)
	}
	defer w.Close()

	rw := &refWatcher{w: w}
	seen := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("watch refs of %s: %w", p, err)
		}
		if !seen[abs] {
			seen[abs] = true
			rw.repos = append(rw.repos, &watchedRepo{path: abs, dirs: map[string]bool{}})
		}
	}
	for _, repo := range rw.repos {
		if err := rw.setup(repo); err != nil && !repo.missing(err) {
			return fmt.Errorf("watch refs of %s: %w", repo.path, err)
		}
	}

	rescan := time.NewTicker(watchRescan)
	defer rescan.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop() // armed by the first event of a burst
	pending := ""   // the reason of the first event of a burst; "" when none
	fire := func(reason string) {
		if pending == "" && reason != "" {
			pending = reason
			debounce.Reset(watchDebounce)
		}
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch refs: watcher closed")
			}
			fire(rw.handle(ev))
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch refs: watcher closed")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: sync, and look at every directory again.
				for _, repo := range rw.repos {
					repo.stale = true
				}
				fire("overflow")
				continue
			}
			return fmt.Errorf("watch refs: %w", err)
		case <-debounce.C:
			send(out, Trigger{Reason: "fsnotify " + pending})
			pending = ""
		case <-rescan.C:
			for _, repo := range rw.repos {
				if !repo.stale {
					continue
				}
				if err := rw.setup(repo); err == nil {
					fire(repo.path) // it may have changed while unwatched
				} else if !repo.missing(err) {
					return fmt.Errorf("watch refs of %s: %w", repo.path, err)
				}
			}
		}
	}
}

// refWatcher maps fsnotify events to the repositories watched.
type refWatcher struct {
	w     *fsnotify.Watcher
	repos []*watchedRepo
}

// watchedRepo is one repository path and the directories watched for it.
type watchedRepo struct {
	path   string          // as given, absolute
	gitDir string          // its git directory: HEAD; "" until found
	common string          // where refs/ and packed-refs live (gitDir, or a linked work tree's commondir)
	dirs   map[string]bool // directories watched
	stale  bool            // to be set up again at the next rescan
}

// missing reports whether a setup error means "not there (yet)": retried
// later, not fatal.
func (repo *watchedRepo) missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotRepository)
}

// setup finds repo's git directory and watches it, its common directory and
// every directory under refs/. On failure repo is left stale, to be retried.
func (rw *refWatcher) setup(repo *watchedRepo) error {
	for d := range repo.dirs {
		_ = rw.w.Remove(d) // gone already if it was deleted
		delete(repo.dirs, d)
	}
	repo.stale, repo.gitDir, repo.common = true, "", ""
	gitDir, err := findGitDir(repo.path)
	if err != nil {
		return err
	}
	common := commonDir(gitDir)
	if common == "" {
		common = gitDir
	}
	for _, d := range []string{gitDir, common} {
		if err := rw.add(repo, d); err != nil {
			return err
		}
	}
	if err := rw.addTree(repo, filepath.Join(common, "refs")); err != nil {
		return err
	}
	repo.stale, repo.gitDir, repo.common = false, gitDir, common
	return nil
}

// findGitDir returns the git directory of path: path itself when it is a
// git directory (bare, or a .git), else path/.git (a directory, or a file
// pointing to one). Unlike OpenLocal it never looks in parent directories.
func findGitDir(path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	if isGitDir(path) {
		return path, nil
	}
	dotGit := filepath.Join(path, ".git")
	fi, err := os.Stat(dotGit)
	switch {
	case err != nil:
	case fi.IsDir() && isGitDir(dotGit):
		return dotGit, nil
	case fi.Mode().IsRegular():
		return readGitFile(dotGit)
	}
	return "", fmt.Errorf("%s: %w", path, ErrNotRepository)
}

// add watches one directory for repo.
func (rw *refWatcher) add(repo *watchedRepo, dir string) error {
	if repo.dirs[dir] {
		return nil
	}
	if err := rw.w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	repo.dirs[dir] = true
	return nil
}

// addTree watches dir and every directory below it. Directories that vanish
// meanwhile are skipped: git deletes empty ref directories when it packs.
func (rw *refWatcher) addTree(repo *watchedRepo, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case !d.IsDir():
			return nil
		}
		if err := rw.add(repo, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// handle looks at one event and returns the reason to sync ("refs/heads/main",
// "packed-refs", "HEAD"), or "" when the event is not about refs. It watches
// directories as they are created under refs/.
func (rw *refWatcher) handle(ev fsnotify.Event) string {
	if ev.Op == fsnotify.Chmod {
		return ""
	}
	for _, repo := range rw.repos {
		if repo.stale {
			continue
		}
		if reason, ok := rw.handleRepo(repo, ev); ok {
			return reason
		}
	}
	return ""
}

// handleRepo handles ev if it is about repo (ok true).
func (rw *refWatcher) handleRepo(repo *watchedRepo, ev fsnotify.Event) (reason string, ok bool) {
	name := ev.Name
	refs := filepath.Join(repo.common, "refs")
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if name == repo.gitDir || name == repo.common || name == refs {
			// The repository itself was deleted or moved away.
			repo.stale = true
			return "HEAD", true
		}
		if repo.dirs[name] {
			delete(repo.dirs, name) // fsnotify dropped its watch
		}
	}
	dir, base := filepath.Dir(name), filepath.Base(name)
	switch {
	case dir == repo.gitDir || dir == repo.common:
		switch {
		case base == "HEAD" || base == "packed-refs":
			return base, true
		case base == "refs" && ev.Has(fsnotify.Create):
			if err := rw.addTree(repo, name); err != nil {
				repo.stale = true
			}
			return "refs", true
		}
		return "", true // index, FETCH_HEAD, logs/, …: not a ref
	case strings.HasPrefix(name, refs+string(filepath.Separator)):
		if strings.HasSuffix(base, ".lock") {
			return "", true // the rename that follows says it
		}
		if ev.Has(fsnotify.Create) {
			if fi, err := os.Lstat(name); err == nil && fi.IsDir() {
				if err := rw.addTree(repo, name); err != nil {
					repo.stale = true
				}
			}
		}
		rel, err := filepath.Rel(repo.common, name)
		if err != nil {
			rel = name
		}
		return filepath.ToSlash(rel), true
	}
	return "", false
}
