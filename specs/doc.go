// Package specs owns kelpie's manifest model: it reads Kubernetes-style YAML
// manifests from an fs.FS, decodes them strictly into the real Kubernetes API
// types (k8s.io/api) plus kelpie's own kinds, applies defaults, validates them
// and computes a canonical content hash per object. It also computes the
// semantic difference between two desired states. A directory holding a
// kustomization is built with kustomize (package overlay) from the same
// fs.FS.
//
// specs never does I/O beyond reading the fs.FS it is given: no network, no
// clock, no goroutines. Every error it reports carries FILE:LINE:COL and the
// field path of the offending YAML node.
package specs
