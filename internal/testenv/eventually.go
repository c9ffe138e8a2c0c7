package testenv

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Eventually polls cond until it holds, failing the test with what when
// timeout passes first: how a test waits for something to happen, instead
// of sleeping a fixed time and hoping.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// WaitWatched waits until this process holds an inotify watch on every one
// of dirs, as a watcher it started sets them up (fsnotify and so
// source.WatchRefs use inotify): a test then changes what is watched
// knowing the change will be seen.
func WaitWatched(t testing.TB, timeout time.Duration, dirs ...string) {
	t.Helper()
	want := map[string]string{} // "ino" → dir
	for _, d := range dirs {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			t.Fatalf("stat %s: %v", d, err)
		}
		want[fmt.Sprintf("%x", st.Ino)] = d
	}
	Eventually(t, timeout, fmt.Sprintf("inotify watches on %v", dirs), func() bool {
		watched := inotifyInodes()
		for ino := range want {
			if !watched[ino] {
				return false
			}
		}
		return true
	})
}

// inotifyInodes returns the inode numbers (hex, as the kernel prints them)
// of everything this process's inotify instances watch.
func inotifyInodes() map[string]bool {
	out := map[string]bool{}
	ents, _ := os.ReadDir("/proc/self/fdinfo")
	for _, e := range ents {
		f, err := os.Open(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			rest, ok := strings.CutPrefix(sc.Text(), "inotify wd:")
			if !ok {
				continue
			}
			for _, field := range strings.Fields(rest) {
				if ino, ok := strings.CutPrefix(field, "ino:"); ok {
					out[ino] = true
				}
			}
		}
		f.Close()
	}
	return out
}

// RefWatchDirs lists the directories a ref watcher of the repository at
// path watches: its git directory (path itself when bare, else path/.git)
// and every directory under its refs. It is empty when path is no
// repository yet.
func RefWatchDirs(path string) []string {
	gitDir := path
	if st, err := os.Stat(filepath.Join(path, ".git")); err == nil && st.IsDir() {
		gitDir = filepath.Join(path, ".git")
	}
	if _, err := os.Stat(filepath.Join(gitDir, "refs")); err != nil {
		return nil
	}
	dirs := []string{gitDir}
	_ = filepath.WalkDir(filepath.Join(gitDir, "refs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	return dirs
}
