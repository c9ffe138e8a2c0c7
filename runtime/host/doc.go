// Package host implements the reconciler's Runtime on containerd, CNI and
// the local disk: it creates, inspects and removes what the reconciler's plan
// says, and it never decides what should run.
//
// Everything it does goes through one Client, connected to a containerd socket
// in one containerd namespace ("kelpie" by default). Images come, in this
// order, from what containerd already holds, from the operator's image
// directories (OCI image layouts and OCI or Docker archives, for air-gapped
// hosts), or from a registry, honouring registry mirrors; every image is
// unpacked into the snapshotter so that containers can start from it.
//
// containerd's errors are converted at this package's boundary: callers test
// them with errors.Is against ErrNotFound, ErrAlreadyExists, ErrUnavailable
// and the other sentinels here, never against containerd's errdefs.
package host
