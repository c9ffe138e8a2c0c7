package volume

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// A subPath is never handed to runc as a path inside the volume: a
// container sharing the volume could swap a directory of that path for a
// symlink between kelpie's check and runc's mount (CVE-2017-1002101).
// Instead kelpie opens the subPath itself, one descriptor resolved beneath
// the volume's root (openat2 RESOLVE_BENEATH: no absolute symlink, no ".."
// above the root), and bind-mounts that descriptor onto a staging path of
// its own:
//
//	PodDir/.subpaths/VOLUME/CONTAINER/INDEX
//
// The container then binds the staging path, which no container can reach.
// Volume names never start with ".", so the staging dir never meets a
// volume, and Remove unmounts it with the pod's other volume mounts.
const (
	subPathsDir     = ".subpaths"
	subPathsDirMode = 0o700 // only kelpie and runc (root) go there
	subPathMkdir    = 0o755 // a directory a subPath creates, as before
)

// SubPath is one subPath mount of a container of a pod.
type SubPath struct {
	Namespace, Pod string
	// Volume is the volume's name, Root its host path (from Prepare).
	Volume, Root string
	// Container is the container's name, Index the mount's index among its
	// mounts: together they name the staging path.
	Container string
	Index     int
	// Path is the subPath, relative to the volume's root.
	Path string
	// Create makes missing directories of Path, as the kubelet does; unset
	// for volumes whose content kelpie projects.
	Create bool
}

// MountSubPath resolves sp.Path inside the volume without following any
// link out of it, bind-mounts what it names onto sp's staging path, and
// returns the staging path: the source to give the container. A staging
// mount left by an interrupted call is replaced. A subPath that leaves the
// volume, through ".." or a symlink, is refused with
// errdefs.ErrInvalidArgument.
func (v *Manager) MountSubPath(sp SubPath) (string, error) {
	if err := statedir.CheckPod(sp.Namespace, sp.Pod); err != nil {
		return "", err
	}
	for _, n := range []struct{ what, s string }{{"volume", sp.Volume}, {"container", sp.Container}} {
		if n.s == "" || n.s == "." || n.s == ".." || strings.ContainsAny(n.s, "/\x00") {
			return "", fmt.Errorf("subPath: %s name %q: %w", n.what, n.s, errdefs.ErrInvalidArgument)
		}
	}
	clean := filepath.Clean(sp.Path)
	if sp.Path == "" || filepath.IsAbs(sp.Path) || clean == ".." || strings.HasPrefix(clean, "../") || sp.Index < 0 {
		return "", fmt.Errorf("subPath %q must be a relative path inside the volume: %w", sp.Path, errdefs.ErrInvalidArgument)
	}
	fd, err := openSubPath(sp.Root, clean, sp.Create)
	if err != nil {
		return "", fmt.Errorf("subPath %q: %w", sp.Path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("subPath %q: %w", sp.Path, err)
	}

	podDir := v.PodDir(sp.Namespace, sp.Pod)
	if err := os.MkdirAll(podDir, volPodDirMode); err != nil {
		return "", fmt.Errorf("subPath %q: %w", sp.Path, err)
	}
	dir := filepath.Join(podDir, subPathsDir, sp.Volume, sp.Container)
	if err := os.MkdirAll(dir, subPathsDirMode); err != nil {
		return "", fmt.Errorf("subPath %q: staging dir: %w", sp.Path, err)
	}
	target := filepath.Join(dir, strconv.Itoa(sp.Index))
	if err := unmountAll(target); err != nil {
		return "", fmt.Errorf("subPath %q: %w", sp.Path, err)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("subPath %q: staging path: %w", sp.Path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = unix.Mkdir(target, subPathsDirMode)
	} else {
		var f int
		if f, err = unix.Open(target, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_WRONLY, 0o600); err == nil {
			err = unix.Close(f)
		}
	}
	if err != nil {
		return "", fmt.Errorf("subPath %q: staging path %s: %w", sp.Path, target, err)
	}
	// The descriptor names exactly what was resolved; the mount takes it,
	// whatever has happened to the names in the volume since.
	if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(fd), target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("subPath %q: bind onto %s: %w", sp.Path, target, err)
	}
	return target, nil
}

// openSubPath opens sub (clean, relative) beneath the directory root as an
// O_PATH descriptor. Missing directories are made when create is set, each
// in the directory just opened and opened again without following links.
func openSubPath(root, sub string, create bool) (int, error) {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("volume %s: %w", root, err)
	}
	defer unix.Close(rootFd)
	fd, err := openBeneath(rootFd, sub, 0)
	if err == nil || !errors.Is(err, unix.ENOENT) || !create {
		return fd, subPathErr(err)
	}
	parent, err := unix.FcntlInt(uintptr(rootFd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	elems := strings.Split(sub, "/")
	for i, el := range elems {
		fd, err := openBeneath(rootFd, strings.Join(elems[:i+1], "/"), 0)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(parent, el, subPathMkdir); err == nil || errors.Is(err, unix.EEXIST) {
				fd, err = openBeneath(parent, el, unix.RESOLVE_NO_SYMLINKS)
			}
		}
		unix.Close(parent)
		if err != nil {
			return -1, subPathErr(err)
		}
		parent = fd
	}
	return parent, nil
}

// openBeneath opens name beneath the directory dirfd as an O_PATH
// descriptor: no absolute symlink, no ".." above dirfd, no /proc magic
// link, and the extra resolve flags.
func openBeneath(dirfd int, name string, resolve uint64) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | resolve,
	}
	for range 16 {
		fd, err := unix.Openat2(dirfd, name, &how)
		if !errors.Is(err, unix.EAGAIN) { // EAGAIN: a rename raced the walk
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// subPathErr turns the errors of openBeneath into kelpie's.
func subPathErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return errdefs.Classify(errdefs.ErrInvalidArgument, errors.New("leaves the volume through '..' or a symlink"))
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("resolving a subPath safely needs openat2 (Linux 5.6 or later): %w", errdefs.Classify(errdefs.ErrNotImplemented, err))
	case errors.Is(err, unix.ENOENT):
		return errdefs.Classify(errdefs.ErrInvalidArgument, errors.New("does not exist in the volume"))
	}
	return err
}

// unmountAll unmounts every mount stacked on path (never following a
// symlink there); a path that is no mount point, or does not exist, is
// done.
func unmountAll(path string) error {
	for range 16 {
		err := unix.Unmount(path, unix.UMOUNT_NOFOLLOW)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(path, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH)
		}
		switch {
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case err != nil:
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted: %w", path, errdefs.ErrFailedPrecondition)
}

// Shows reports whether a container bind mount from source shows dir or
// something below it: source is dir or below it, or source is a subPath
// staging mount of dir or of something below it.
func (v *Manager) Shows(source, dir string) (bool, error) {
	if source == dir || strings.HasPrefix(source, dir+"/") {
		return true, nil
	}
	if !strings.HasPrefix(source, v.podsDir+"/") || !strings.Contains(source, "/"+subPathsDir+"/") {
		return false, nil
	}
	staged, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(source))
	if err != nil || len(staged) == 0 {
		return false, err
	}
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (bool, bool) {
		return !(m.Mountpoint == "/" || m.Mountpoint == dir || strings.HasPrefix(dir, m.Mountpoint+"/")), false
	})
	if err != nil || len(mounts) == 0 {
		return false, err
	}
	under := mounts[0] // the mount dir is on: the deepest mount point above it
	for _, m := range mounts {
		if len(m.Mountpoint) > len(under.Mountpoint) {
			under = m
		}
	}
	// dir as a path of its filesystem, as mountinfo shows a bind's root.
	fsDir := path.Join(under.Root, strings.TrimPrefix(dir, under.Mountpoint))
	for _, m := range staged {
		if m.Major == under.Major && m.Minor == under.Minor && (m.Root == fsDir || strings.HasPrefix(m.Root, fsDir+"/")) {
			return true, nil
		}
	}
	return false, nil
}
