package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// Config configures pod volumes.
type Config struct {
	// StateDir is kelpie's state dir: pods' volumes go under
	// StateDir/pods/NS_NAME/volumes, claims under StateDir/volumes. Default
	// statedir.Default.
	StateDir string
	// AllowHostPaths are the host path prefixes hostPath volumes may use
	// (--allow-host-path). Empty allows none.
	AllowHostPaths []string
}

// Manager makes and removes the directories pods' volumes are bound from.
// Its methods are safe for concurrent use on different pods and claims.
type Manager struct {
	cfg       Config
	podsDir   string   // StateDir/pods, symlinks resolved
	claimsDir string   // StateDir/volumes, symlinks resolved
	allowed   []string // AllowHostPaths, cleaned and symlinks resolved
}

// Modes of what volumes creates.
const (
	volPodDirMode    = 0o711 // the pod's volumes dir: traversable, not listable
	volEmptyDirMode  = 0o777 // as Kubernetes: any container user may write
	volClaimDataMode = 0o755 // a claim's data dir, when kelpie creates it
)

// New creates the state dir's volume directories and resolves the
// allowed host path prefixes.
func New(cfg Config) (*Manager, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = statedir.Default
	}
	if !filepath.IsAbs(cfg.StateDir) {
		return nil, fmt.Errorf("volumes: state dir %q is not an absolute path: %w", cfg.StateDir, errdefs.ErrInvalidArgument)
	}
	v := &Manager{cfg: cfg}
	for _, d := range []struct {
		dst  *string
		name string
	}{{&v.podsDir, statedir.Pods}, {&v.claimsDir, statedir.Claims}} {
		dir := filepath.Join(cfg.StateDir, d.name)
		if err := os.MkdirAll(dir, volPodDirMode); err != nil {
			return nil, fmt.Errorf("volumes: %w", err)
		}
		// Resolved, so that paths compare with /proc/self/mountinfo.
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return nil, fmt.Errorf("volumes: %w", err)
		}
		*d.dst = real
	}
	for i, p := range cfg.AllowHostPaths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("volumes: --allow-host-path %q (%d) is not an absolute path: %w", p, i+1, errdefs.ErrInvalidArgument)
		}
		real, err := resolveExisting(filepath.Clean(p))
		if err != nil {
			return nil, fmt.Errorf("volumes: --allow-host-path %s: %w", p, err)
		}
		v.allowed = append(v.allowed, real)
	}
	statedir.RemoveTemps(v.claimsDir)
	return v, nil
}

// PodDir is where the volumes of a pod live: StateDir/pods/NS_NAME/volumes.
func (v *Manager) PodDir(namespace, name string) string {
	return filepath.Join(v.podsDir, statedir.Key(namespace, name), "volumes")
}

// Prepare makes p's volumes ready and returns, by volume name, the host path
// to bind into containers. It is idempotent: what exists is kept, changed
// projected content is projected again (atomically), and what an interrupted
// call left is completed.
func (v *Manager) Prepare(p reconciler.Pod) (map[string]string, error) {
	key := reconciler.JoinName(p.Namespace, p.Name)
	if err := statedir.CheckPod(p.Namespace, p.Name); err != nil {
		return nil, fmt.Errorf("prepare volumes of pod %s: %w", key, err)
	}
	dir := v.PodDir(p.Namespace, p.Name)
	out := make(map[string]string, len(p.Volumes))
	for _, vol := range p.Volumes {
		path, err := v.prepareOne(dir, vol, p.FSGroup)
		if err != nil {
			return nil, fmt.Errorf("volume %s of pod %s: %w", vol.Name, key, err)
		}
		out[vol.Name] = path
	}
	return out, nil
}

// prepareOne makes one volume ready under the pod's volumes dir.
func (v *Manager) prepareOne(podDir string, vol reconciler.Volume, fsGroup *int64) (string, error) {
	if vol.Name == "" || strings.ContainsAny(vol.Name, "/\x00") || strings.HasPrefix(vol.Name, ".") {
		return "", fmt.Errorf("invalid volume name %q: %w", vol.Name, errdefs.ErrInvalidArgument)
	}
	mkdir := func() (string, error) {
		if err := os.MkdirAll(podDir, volPodDirMode); err != nil {
			return "", err
		}
		path := filepath.Join(podDir, vol.Name)
		if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
		return path, nil
	}
	switch src := vol.Source.(type) {
	case reconciler.EmptyDir:
		path, err := mkdir()
		if err != nil {
			return "", err
		}
		return path, prepareEmptyDir(path, src, fsGroup)
	case reconciler.Projected:
		path, err := mkdir()
		if err != nil {
			return "", err
		}
		return path, prepareProjected(path, src, fsGroup)
	case reconciler.HostPath:
		return v.hostPath(src)
	case reconciler.Claim:
		if err := v.EnsureClaim(src); err != nil {
			return "", err
		}
		data := v.ClaimDataDir(src.Namespace, src.Name)
		if fsGroup != nil {
			if err := applyFSGroupDir(data, *fsGroup); err != nil {
				return "", err
			}
		}
		return data, nil
	case nil:
		return "", fmt.Errorf("no volume source: %w", errdefs.ErrInvalidArgument)
	default:
		return "", fmt.Errorf("unsupported volume source %T: %w", src, errdefs.ErrNotImplemented)
	}
}

// prepareEmptyDir makes path an emptyDir: a directory anyone may write, on a
// tmpfs (of SizeLimit bytes, when set) for the Memory medium. A size limit
// on disk is not enforced.
func prepareEmptyDir(path string, ed reconciler.EmptyDir, fsGroup *int64) error {
	switch ed.Medium {
	case "":
	case "Memory":
		if err := mountTmpfs(path, volEmptyDirMode, ed.SizeLimit); err != nil {
			return err
		}
	default:
		return fmt.Errorf("emptyDir medium %q is not supported (use \"\" or \"Memory\"): %w", ed.Medium, errdefs.ErrInvalidArgument)
	}
	if err := os.Chmod(path, volEmptyDirMode); err != nil {
		return err
	}
	if fsGroup != nil {
		return applyFSGroupDir(path, *fsGroup)
	}
	return nil
}

// applyFSGroupDir gives a writable volume's root directory to the pod's
// fsGroup, as the kubelet does: group-owned, group-writable and setgid, so
// that files created in it belong to the group. Only the root is changed;
// a claim's existing content is left as it is.
func applyFSGroupDir(path string, gid int64) error {
	if err := os.Lchown(path, -1, int(gid)); err != nil {
		return fmt.Errorf("fsGroup %d: %w", gid, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	mode := fi.Mode().Perm() | 0o070 | os.ModeSetgid
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("fsGroup %d: %w", gid, err)
	}
	return nil
}

// Remove unmounts the pod's tmpfs volumes and removes its volumes dir. It
// never touches StateDir/volumes (claims) nor a hostPath. Removing what does
// not exist succeeds.
func (v *Manager) Remove(namespace, name string) error {
	key := reconciler.JoinName(namespace, name)
	if err := statedir.CheckPod(namespace, name); err != nil {
		return fmt.Errorf("remove volumes of pod %s: %w", key, err)
	}
	dir := v.PodDir(namespace, name)
	if err := unmountUnder(dir); err != nil {
		return fmt.Errorf("remove volumes of pod %s: %w", key, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove volumes of pod %s: %w", key, err)
	}
	// The pod's dir may hold other things of the pod (logs): keep it then.
	_ = os.Remove(filepath.Dir(dir))
	return nil
}
