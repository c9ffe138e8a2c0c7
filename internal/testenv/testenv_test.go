package testenv

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// recorder is a testing.TB that records how a test would have ended.
type recorder struct {
	testing.TB
	ended string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.ended = "fatal: " + fmt.Sprintf(format, args...)
}
func (r *recorder) Skipf(format string, args ...any) {
	r.ended = "skip: " + fmt.Sprintf(format, args...)
}

func TestMissingSkipsLocallyAndFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci   string
		want string
	}{
		{"", "skip: no containerd"},
		{"false", "skip: no containerd"},
		{"true", "fatal: CI=true, so this test may not be skipped: no containerd"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			Missing(r, "no %s", "containerd")
			if r.ended != tc.want {
				t.Errorf("ended with %q, want %q", r.ended, tc.want)
			}
		})
	}
}

func TestContainerdAddressUnset(t *testing.T) {
	t.Setenv(AddressEnv, "")
	t.Setenv("CI", "true")
	r := &recorder{TB: t}
	ContainerdAddress(r)
	if r.ended == "" || r.ended[:5] != "fatal" {
		t.Errorf("unset address under CI ended with %q, want a failure", r.ended)
	}
}

// TestWaitWatched: a directory counts as watched once an inotify watch is
// on it, not before.
func TestWaitWatched(t *testing.T) {
	dir := t.TempDir()
	if inotifyInodes()[inodeOf(t, dir)] {
		t.Fatal("a new directory is watched already")
	}
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE); err != nil {
		t.Fatal(err)
	}
	WaitWatched(t, time.Second, dir)
}

func inodeOf(t *testing.T, p string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", st.Ino)
}
