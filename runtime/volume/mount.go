package volume

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// mountTmpfs mounts a tmpfs on the directory path unless one is mounted
// there already. size is in bytes (0: the kernel's default, half of RAM, of
// which only what is used is taken). Anything in path before the mount is
// removed first, so that nothing (a secret, say) hides under the mount.
func mountTmpfs(path string, mode os.FileMode, size int64) error {
	if ok, err := isTmpfsMount(path); err != nil {
		return err
	} else if ok {
		return nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", path, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(path + "/" + e.Name()); err != nil {
			return fmt.Errorf("mount tmpfs on %s: clear: %w", path, err)
		}
	}
	opts := "mode=" + strconv.FormatUint(uint64(mode.Perm()), 8)
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s (%s): %w", path, opts, err)
	}
	return nil
}

// isTmpfsMount reports whether a tmpfs is mounted on path itself (not
// merely on a directory above it).
func isTmpfsMount(path string) (bool, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil {
		return false, fmt.Errorf("read mounts: %w", err)
	}
	for _, m := range mounts {
		if m.FSType == "tmpfs" {
			return true, nil
		}
	}
	return false, nil
}

// unmountUnder unmounts every mount at or below dir, deepest first, and
// fails unless none is left: a caller may then remove dir without reaching
// into a mounted filesystem.
func unmountUnder(dir string) error {
	for attempt := 0; attempt < 3; attempt++ {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil {
			return fmt.Errorf("read mounts: %w", err)
		}
		if len(mounts) == 0 {
			return nil
		}
		sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
		for _, m := range mounts {
			err := unix.Unmount(m.Mountpoint, 0)
			if errors.Is(err, unix.EBUSY) {
				// In use (a process has a file open there): detach it from
				// the tree now; the kernel frees it when the last user goes.
				err = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
			}
			if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
			}
		}
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("%s is still mounted: %w", mounts[0].Mountpoint, errdefs.ErrFailedPrecondition)
	}
	return nil
}
