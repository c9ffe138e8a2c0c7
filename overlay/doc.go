// Package overlay builds kustomize overlays (a directory holding a
// kustomization.yaml) from a repository's fs.FS, with
// sigs.k8s.io/kustomize/api.
//
// It reads only the fs.FS it is given, read-only, through a kustomize file
// system of its own: paths that lead out of the file system (a ../ above its
// root, a symlink pointing out of it) are refused, and so are remote bases and
// resources (URLs, git references), helm charts and plugins (generators,
// transformers, validators), with the kustomization file and line that ask
// for them. Nothing here touches the network, runs a program or writes a
// file. The sizes the caller gives bound every file read and every object
// built.
//
// Each object built comes back as YAML with the file it came from (the
// kustomization that generated it, for a generator), found through
// kustomize's origin annotations; those annotations are removed from the
// output so they never reach the desired state.
package overlay
