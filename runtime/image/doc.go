// Package image is kelpie's containerd client and everything about images:
// connecting to containerd (Client, Connect), ensuring an image is there
// (EnsureImage), importing and exporting OCI and Docker archives, pulling
// through registry mirrors, progress reports, image leases, and serving
// the images it holds as a read-only registry (RegistryHandler).
//
// Images come, in this order, from what containerd already holds, from the
// operator's image directories (OCI image layouts and OCI or Docker
// archives, for air-gapped hosts), or from a registry, honouring registry
// mirrors; every image is unpacked into the snapshotter so that containers
// can start from it.
//
// containerd's errors are converted at this package's boundary
// (ConvertErr): callers test them with errors.Is against the sentinels of
// package errdefs, never against containerd's errdefs. It never creates
// containers, networks or volumes, and it never decides which images a
// host needs.
package image
