package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// hostPath checks a hostPath volume against the allowed prefixes and its
// type, creates it for the *OrCreate types, and returns the path to bind:
// the volume's path with every symlink resolved, so that what is checked is
// what gets mounted.
func (v *Manager) hostPath(hp reconciler.HostPath) (string, error) {
	if !filepath.IsAbs(hp.Path) {
		return "", fmt.Errorf("hostPath %s is not an absolute path: %w", hp.Path, errdefs.ErrInvalidArgument)
	}
	real, err := resolveExisting(filepath.Clean(hp.Path))
	if err != nil {
		return "", fmt.Errorf("hostPath %s: %w", hp.Path, err)
	}
	if !v.hostPathAllowed(real) {
		resolved := ""
		if real != hp.Path {
			resolved = "resolves to " + real + ", "
		}
		// The message is the operator's whole story; errors.Is still finds
		// errdefs.ErrInvalidArgument.
		return "", errdefs.Classify(errdefs.ErrInvalidArgument, fmt.Errorf(
			"hostPath %s is not allowed: %snot under --allow-host-path %v", hp.Path, resolved, v.cfg.AllowHostPaths))
	}
	if err := checkHostPathType(real, hp.Type); err != nil {
		return "", fmt.Errorf("hostPath %s: %w", hp.Path, err)
	}
	return real, nil
}

// hostPathAllowed reports whether the resolved path is one of the allowed
// prefixes or below one.
func (v *Manager) hostPathAllowed(real string) bool {
	for _, p := range v.allowed {
		if p == "/" || real == p || strings.HasPrefix(real, p+"/") {
			return true
		}
	}
	return false
}

// checkHostPathType checks path against a Kubernetes hostPath type,
// creating a directory (DirectoryOrCreate, with its parents) or an empty
// file (FileOrCreate, whose parent must exist) when nothing is there.
func checkHostPathType(path, typ string) error {
	fi, err := os.Stat(path)
	missing := errors.Is(err, os.ErrNotExist)
	if err != nil && !missing {
		return err
	}
	want := func(what string, ok func(os.FileMode) bool) error {
		if missing {
			return fmt.Errorf("type %s: %s does not exist: %w", typ, path, errdefs.ErrFailedPrecondition)
		}
		if !ok(fi.Mode()) {
			return fmt.Errorf("type %s: %s is not %s: %w", typ, path, what, errdefs.ErrFailedPrecondition)
		}
		return nil
	}
	switch typ {
	case "":
		return nil
	case "DirectoryOrCreate":
		if missing {
			return os.MkdirAll(path, 0o755)
		}
		return want("a directory", os.FileMode.IsDir)
	case "Directory":
		return want("a directory", os.FileMode.IsDir)
	case "FileOrCreate":
		if missing {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, os.ErrExist) {
				return checkHostPathType(path, "File")
			}
			if err != nil {
				return err
			}
			return f.Close()
		}
		return want("a file", os.FileMode.IsRegular)
	case "File":
		return want("a file", os.FileMode.IsRegular)
	case "Socket":
		return want("a socket", func(m os.FileMode) bool { return m&os.ModeSocket != 0 })
	case "CharDevice":
		return want("a character device", func(m os.FileMode) bool { return m&os.ModeCharDevice != 0 })
	case "BlockDevice":
		return want("a block device", func(m os.FileMode) bool { return m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0 })
	default:
		return fmt.Errorf("unknown hostPath type %q: %w", typ, errdefs.ErrInvalidArgument)
	}
}

// resolveExisting resolves the symlinks of the longest existing prefix of
// the clean absolute path p and appends the rest, so that a path that does
// not exist yet resolves to where it would be created. A dangling symlink
// is an error.
func resolveExisting(p string) (string, error) {
	rest := ""
	cur := p
	for {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if _, lerr := os.Lstat(cur); lerr == nil {
			// cur exists, so a symlink on the way dangles: where it leads
			// cannot be checked, and a mount would follow it anywhere.
			return "", fmt.Errorf("%s: a symlink in it leads nowhere: %w", cur, errdefs.ErrFailedPrecondition)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", err
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
