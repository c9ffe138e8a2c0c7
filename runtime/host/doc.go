// Package host implements the reconciler's Runtime on one host: it composes
// package image (the containerd client and images), package network (CNI
// networks and pod sandboxes) and package volume (pods' volumes and
// claims), and runs pods as containerd containers and tasks joined to
// them. It creates, inspects and removes what the reconciler's plan says,
// and it never decides what should run.
//
// Everything it does goes through one image.Client, connected to a
// containerd socket in one containerd namespace ("kelpie" by default); its
// containerd events that can mean drift are exposed as Events, so that
// callers never import containerd.
//
// Errors are classified with the sentinels of package errdefs: callers test
// them with errors.Is against errdefs.ErrNotFound, errdefs.ErrAlreadyExists,
// errdefs.ErrUnavailable and the others, never against containerd's errdefs.
package host
