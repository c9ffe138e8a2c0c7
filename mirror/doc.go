// Package mirror makes and reads kelpie's air-gap bundles, and keeps the
// mirror directories they are imported into.
//
// A bundle is one uncompressed tar file (see [Index] for its layout): an
// index, a git bundle of the chosen refs, and an OCI image archive of the
// images the manifests at those refs use. A mirror directory holds a bare
// repository (DIR/site.git) and an OCI image layout (DIR/images) that an
// agent uses as-is with --repo DIR/site.git --image-dir DIR/images.
//
// An import checks integrity always and, with trusted keys, origin: the
// refs' commits must be signed, and every image's digest pinned by the
// LockFile of one of them (see WriteLock), since the index that maps image
// names to digests is not signed.
//
// mirror composes source (git), specs (which images manifests use) and
// runtime (image export). It never runs workloads and never decides what a
// host should run; an import never deletes what a mirror holds.
package mirror
