package mirror

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/source"
)

// Format is the value of Index.Format for bundles this package writes and
// reads.
const Format = "kelpie.dev/mirror-bundle/v1"

// Names of the tar entries of a bundle, in their order.
const (
	// IndexName is the first entry: the Index, as JSON.
	IndexName = "kelpie-bundle.json"
	// GitPart is a git bundle (v2), readable by `git bundle verify` and
	// `git fetch`.
	GitPart = "git.bundle"
	// ImagesPart is an OCI image archive: oci-layout, index.json naming
	// every image, and the blobs the bundle carries.
	ImagesPart = "images.tar"
)

// maxIndexSize bounds the index a reader accepts; a real one is kilobytes.
const maxIndexSize = 16 << 20

// ErrCorrupt is wrapped by the errors of a bundle that is truncated, has
// been altered, or is not a kelpie bundle.
var ErrCorrupt = errors.New("bundle corrupt or incomplete")

// Index describes a bundle. A bundle is a tar of IndexName (this, as JSON),
// then GitPart, then ImagesPart. Every part's SHA-256 and size are here, so
// the index is the checksum list an import verifies the rest against; git
// objects and image blobs are content-addressed besides, and checked again
// by their own digests.
type Index struct {
	Format  string    `json:"format"`
	Created time.Time `json:"created"`
	// Repo is where the history came from (credentials removed) and Path
	// the manifests' directory in it.
	Repo string `json:"repo"`
	Path string `json:"path"`
	// Refs are the refs the git bundle carries, each with the object it
	// points at.
	Refs []source.BundleRef `json:"refs"`
	// Since is set for an incremental bundle: what it was made after.
	Since *Basis `json:"since,omitempty"`
	// Parts are GitPart and ImagesPart with their checksums.
	Parts []Part `json:"parts"`
	// Images are every image the manifests at Refs use, sorted by name.
	Images []Image `json:"images"`
}

// Basis is what an incremental bundle was made after: a receiver must have
// imported it (or a later bundle descending from it).
type Basis struct {
	// Bundle is the ID of the basis bundle, when --since named one.
	Bundle string `json:"bundle,omitempty"`
	// Commits are the commits the receiver is assumed to hold; those that
	// are ancestors of Refs are the git bundle's prerequisites.
	Commits []string `json:"commits"`
	// Prerequisites are the commits the git bundle builds on.
	Prerequisites []string `json:"prerequisites,omitempty"`
}

// Part is one part of a bundle after the index.
type Part struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Image is one image of a bundle.
type Image struct {
	// Name is the normalized reference ("docker.io/library/nginx:1.7.9").
	Name string `json:"name"`
	// Target is the image's manifest or index.
	Target ocispec.Descriptor `json:"target"`
	// Blobs are every blob the image needs (the target included); Carried
	// counts those this bundle holds, the rest being in the basis.
	Blobs   []ocispec.Descriptor `json:"blobs"`
	Carried int                  `json:"carried"`
}

// Size is the sum of the image's blob sizes.
func (img Image) Size() int64 {
	var n int64
	for _, b := range img.Blobs {
		n += b.Size
	}
	return n
}

// part returns the part named name.
func (x *Index) part(name string) (Part, bool) {
	for _, p := range x.Parts {
		if p.Name == name {
			return p, true
		}
	}
	return Part{}, false
}

// validate checks what a reader relies on.
func (x *Index) validate() error {
	if x.Format != Format {
		return fmt.Errorf("%w: format %q, want %q", ErrCorrupt, x.Format, Format)
	}
	if len(x.Refs) == 0 {
		return fmt.Errorf("%w: index lists no refs", ErrCorrupt)
	}
	seen := map[string]bool{}
	for _, p := range x.Parts {
		if p.Name != GitPart && p.Name != ImagesPart {
			return fmt.Errorf("%w: unknown part %q", ErrCorrupt, p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("%w: part %q listed twice", ErrCorrupt, p.Name)
		}
		seen[p.Name] = true
		if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != sha256.Size || p.Size < 0 {
			return fmt.Errorf("%w: part %q: bad checksum or size", ErrCorrupt, p.Name)
		}
	}
	if !seen[GitPart] {
		return fmt.Errorf("%w: index lists no %s", ErrCorrupt, GitPart)
	}
	for _, img := range x.Images {
		if len(img.Blobs) == 0 || img.Target.Digest == "" {
			return fmt.Errorf("%w: image %s lists no blobs", ErrCorrupt, img.Name)
		}
		for _, b := range img.Blobs {
			if err := b.Digest.Validate(); err != nil {
				return fmt.Errorf("%w: image %s: %w", ErrCorrupt, img.Name, err)
			}
		}
	}
	return nil
}

// readIndex reads a bundle's first tar entry, the index, and returns it with
// the bundle's ID (the SHA-256 of the index bytes).
func readIndex(tr *tar.Reader) (*Index, string, error) {
	h, err := tr.Next()
	if err != nil {
		return nil, "", fmt.Errorf("%w: read index: %w", ErrCorrupt, unexpectedEOF(err))
	}
	if h.Name != IndexName || h.Typeflag != tar.TypeReg {
		return nil, "", fmt.Errorf("%w: first entry is %q, not %s: not a kelpie bundle", ErrCorrupt, h.Name, IndexName)
	}
	if h.Size > maxIndexSize {
		return nil, "", fmt.Errorf("%w: index of %d bytes", ErrCorrupt, h.Size)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return nil, "", fmt.Errorf("%w: read index: %w", ErrCorrupt, unexpectedEOF(err))
	}
	var x Index
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, "", fmt.Errorf("%w: parse index: %w", ErrCorrupt, err)
	}
	if err := x.validate(); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	return &x, hex.EncodeToString(sum[:]), nil
}

// ReadIndex reads the index of the bundle file and returns it with the
// bundle's ID. Only the index is read; nothing is verified beyond it.
func ReadIndex(file string) (*Index, string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	x, id, err := readIndex(tar.NewReader(f))
	if err != nil {
		return nil, "", fmt.Errorf("read bundle %s: %w", file, err)
	}
	return x, id, nil
}

// unexpectedEOF turns io.EOF into io.ErrUnexpectedEOF: a bundle that ends
// where more is due is truncated.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
