package testenv

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// lockDir holds the lock files the test processes of this machine share
// (other sessions run the same tests against the same containerd).
var lockDir = filepath.Join(os.TempDir(), "kelpie-cli-test-locks")

// TryLock takes the lock file name, shared by the test processes of this
// machine, without waiting; nil when another holds it. Closing the file,
// or the end of the process, releases it.
func TryLock(t testing.TB, name string) *os.File {
	t.Helper()
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(lockDir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil
	}
	return f
}

// Lock takes the lock file name, waiting up to wait for it, and releases
// it when the test ends.
func Lock(t testing.TB, name string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if f := TryLock(t, name); f != nil {
			t.Cleanup(func() { f.Close() })
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s is held by another test process for %v", name, wait)
		}
		time.Sleep(500 * time.Millisecond) // poll interval: flock has no wait with a deadline
	}
}
