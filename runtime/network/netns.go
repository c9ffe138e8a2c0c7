package network

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// Persistent network namespaces: a pod's namespace is pinned by bind-mounting
// its nsfs file onto a file under the state dir (as `ip netns add` does under
// /run/netns), so it outlives the process that made it and can be found again
// after a restart. The file is made before the mount, so a file that is not
// an nsfs mount is a namespace whose creation was interrupted (or whose mount
// went with a reboot): netnsCreate completes it and netnsRemove removes it.

// netnsCreate makes path a persistent network namespace. An existing one is
// kept; a file left by an interrupted creation is mounted over.
func netnsCreate(path string) error {
	if ok, err := netnsMounted(path); err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	} else if ok {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	f.Close()

	// unshare moves the calling OS thread into the new namespace. Do it on a
	// locked thread and move the thread back before unlocking it. Should
	// moving back fail, the goroutine ends still locked and the runtime ends
	// the thread, so no goroutine ever runs in a pod's namespace by accident.
	// (Ending every such thread would not do: the main thread is never
	// ended, only parked, and would keep the pod's namespace forever.)
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		orig, err := os.Open(self)
		if err != nil {
			goruntime.UnlockOSThread()
			done <- fmt.Errorf("open current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			done <- fmt.Errorf("unshare: %w", err)
			return
		}
		mountErr := unix.Mount(self, path, "none", unix.MS_BIND, "")
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- errors.Join(mountErr, fmt.Errorf("return to the host netns: %w", err)) // stay locked
			return
		}
		goruntime.UnlockOSThread()
		if mountErr != nil {
			mountErr = fmt.Errorf("bind mount %s: %w", self, mountErr)
		}
		done <- mountErr
	}()
	if err := <-done; err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	return nil
}

// netnsMounted reports whether path is a network namespace bind mount. A
// missing file is not an error: it is not one.
func netnsMounted(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Type) == int64(unix.NSFS_MAGIC), nil
}

// netnsRemove unmounts the namespace pinned at path and removes the file. A
// missing file, or one that is not mounted, is fine. The namespace itself
// goes when its last user (a container still running in it) goes.
func netnsRemove(path string) error {
	for i := 0; i < 8; i++ { // a few stacked mounts at most; never loop forever
		ok, err := netnsMounted(path)
		if err != nil {
			return fmt.Errorf("remove netns %s: %w", path, err)
		}
		if !ok {
			break
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("remove netns %s: unmount: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// withNetNS runs fn on a goroutine whose OS thread has entered the network
// namespace at path, and waits for it; sockets fn creates live in that
// namespace. The thread is switched back afterwards; when that fails, the
// goroutine ends still locked, so the runtime ends the thread rather than
// reuse it in the wrong namespace.
func withNetNS(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	defer target.Close()

	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			goruntime.UnlockOSThread()
			done <- fmt.Errorf("enter netns %s: open current netns: %w", path, err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			done <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		fnErr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("leave netns %s: %w", path, err) // stay locked: the thread dies
			return
		}
		goruntime.UnlockOSThread()
		done <- fnErr
	}()
	return <-done
}
