package statedir

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// Default is the state dir when none is configured (--state-dir): the FHS
// place for a daemon's state that outlives reboots.
const Default = "/var/lib/kelpie"

// Layout of the state dir (StateDir, /var/lib/kelpie by default). Every path
// kelpie writes there is derived by the functions below, so the layout is
// described in one place:
//
//	cni/net.d/*.conflist            CNI network configurations kelpie wrote
//	cni/cache/results/*             libcni's cached ADD results (one per attachment)
//	cni/networks/NET/IP             host-local IP leases
//	netns/NS_NAME                   a pod's network namespace (an nsfs bind mount)
//	sandboxes/NS_NAME.json          a pod sandbox's networks and port mappings, written before its namespace
//	pods/NS_NAME/volumes/VOL        a pod's emptyDir and projected volumes
//	volumes/NS_NAME/data            a claim's data; volumes/NS_NAME/claim.json labels it
//
// NS_NAME joins a namespace and a name with "_", which neither may contain
// (both are Kubernetes DNS names), so the pair can be split again.
const (
	CNIConf        = "cni/net.d"
	CNICache       = "cni/cache"
	CNILeases      = "cni/networks"
	NetNS          = "netns"
	Sandboxes      = "sandboxes"
	Pods           = "pods"
	Claims         = "volumes"
	TmpPrefix      = atomicfile.TempPrefix // files and dirs being written; removed when found
	RemovingPrefix = ".removing-"          // dirs renamed away before their removal
)

// Key is the file name of a namespaced object in the state dir:
// "namespace_name".
func Key(namespace, name string) string { return namespace + "_" + name }

// SplitKey parses a file name made by Key.
func SplitKey(key string) (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(key, "_")
	if !ok || namespace == "" || name == "" || strings.HasPrefix(key, ".") {
		return "", "", false
	}
	return namespace, name, true
}

// CheckName rejects a namespace or name that cannot be part of a state
// dir path: empty, or holding a path separator, "_" or a leading dot.
func CheckName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty: %w", what, errdefs.ErrInvalidArgument)
	case strings.ContainsAny(s, "/_\x00") || strings.HasPrefix(s, "."):
		return fmt.Errorf("%s %q: must not contain '/' or '_' nor start with '.': %w", what, s, errdefs.ErrInvalidArgument)
	}
	return nil
}

// CheckPod checks a pod's namespace and name with CheckName.
func CheckPod(namespace, name string) error {
	if err := CheckName("pod namespace", namespace); err != nil {
		return err
	}
	return CheckName("pod name", name)
}

// Random returns a short random suffix for temporary names.
func Random() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return hex.EncodeToString(b[:])
}

// WriteAtomic replaces path with data (atomicfile.WriteFile: a reader, or a
// crash, sees the old content or the new one, never a mix). The directory is
// created when missing.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, perm)
}

// SyncDir makes a rename or removal in dir durable.
func SyncDir(dir string) error { return atomicfile.SyncDir(dir) }

// RemoveTemps removes what an interrupted WriteAtomic or removal
// left in dir. It is best effort: the leftovers are only clutter.
func RemoveTemps(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TmpPrefix) || strings.HasPrefix(e.Name(), RemovingPrefix) {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// Labels are the labels written beside everything kelpie creates in the
// state dir: LabelManaged plus extra.
func Labels(extra ...string) map[string]string {
	l := map[string]string{reconciler.LabelManaged: reconciler.ManagedValue}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// Managed reports whether labels mark an object kelpie created.
func Managed(labels map[string]string) bool {
	return labels[reconciler.LabelManaged] == reconciler.ManagedValue
}
