package mirror

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
)

// annotationImageName names an image in an OCI index for containerd and for
// kelpie's image dirs (runtime reads it).
const annotationImageName = "io.containerd.image.name"

// layoutFile is the content of an OCI layout's oci-layout file.
var layoutFile = []byte(`{"imageLayoutVersion":"` + ocispec.ImageLayoutVersion + `"}`)

func sortImages(imgs []Image) {
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Name < imgs[j].Name })
}

// blobPath is where blob d lives in the layout at dir.
func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// stageImages reads an OCI archive (the ImagesPart) from r into the
// directory dir: each blob is written to dir/blobs/sha256/HEX and checked
// against its digest as it is written. It returns the archive's index.
// dir is created.
func stageImages(ctx context.Context, r io.Reader, dir string) (*ocispec.Index, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	tr := tar.NewReader(r)
	var idx *ocispec.Index
	layoutSeen := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, ImagesPart, unexpectedEOF(err))
		}
		name := path.Clean(h.Name)
		switch {
		case h.Typeflag == tar.TypeDir:
			continue
		case h.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("%w: %s: %s is not a regular file", ErrCorrupt, ImagesPart, h.Name)
		case name == ocispec.ImageLayoutFile:
			var l ocispec.ImageLayout
			if err := json.NewDecoder(io.LimitReader(tr, maxIndexSize)).Decode(&l); err != nil || l.Version != ocispec.ImageLayoutVersion {
				return nil, fmt.Errorf("%w: %s: bad %s", ErrCorrupt, ImagesPart, ocispec.ImageLayoutFile)
			}
			layoutSeen = true
		case name == "index.json":
			var x ocispec.Index
			if h.Size > maxIndexSize {
				return nil, fmt.Errorf("%w: %s: index.json of %d bytes", ErrCorrupt, ImagesPart, h.Size)
			}
			if err := json.NewDecoder(tr).Decode(&x); err != nil {
				return nil, fmt.Errorf("%w: %s: parse index.json: %w", ErrCorrupt, ImagesPart, unexpectedEOF(err))
			}
			idx = &x
		case strings.HasPrefix(name, "blobs/sha256/"):
			d := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(name, "blobs/sha256/"))
			if err := d.Validate(); err != nil {
				return nil, fmt.Errorf("%w: %s: blob name %s: %w", ErrCorrupt, ImagesPart, h.Name, err)
			}
			if err := stageBlob(tr, blobPath(dir, d), d, h.Size); err != nil {
				return nil, fmt.Errorf("%w: %s: blob %s: %w", ErrCorrupt, ImagesPart, d, err)
			}
		default:
			return nil, fmt.Errorf("%w: %s: unexpected entry %s", ErrCorrupt, ImagesPart, h.Name)
		}
	}
	if !layoutSeen || idx == nil {
		return nil, fmt.Errorf("%w: %s: not an OCI archive (no %s or index.json)", ErrCorrupt, ImagesPart, ocispec.ImageLayoutFile)
	}
	return idx, nil
}

// stageBlob writes one blob to file, checking size and digest.
func stageBlob(r io.Reader, file string, d digest.Digest, size int64) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	v := d.Verifier()
	n, err := io.Copy(io.MultiWriter(f, v), r)
	if err == nil {
		err = f.Sync() // on disk before a rename can make it visible
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return unexpectedEOF(err)
	case n != size:
		return fmt.Errorf("%d bytes, want %d", n, size)
	case !v.Verified():
		return errors.New("content does not match its digest")
	}
	return nil
}

// readLayoutIndex reads the index.json of the layout at dir; a missing
// layout gives an empty index.
func readLayoutIndex(dir string) (*ocispec.Index, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &ocispec.Index{}, nil
	}
	if err != nil {
		return nil, err
	}
	var x ocispec.Index
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, "index.json"), err)
	}
	return &x, nil
}

// mergeIndex returns the index of old with the images of add, an image of
// the same name replaced, sorted by name. Entries without a name are kept.
func mergeIndex(old *ocispec.Index, add []Image) ocispec.Index {
	byName := map[string]ocispec.Descriptor{}
	var unnamed []ocispec.Descriptor
	for _, d := range old.Manifests {
		if n := d.Annotations[annotationImageName]; n != "" {
			byName[n] = d
		} else {
			unnamed = append(unnamed, d)
		}
	}
	for _, img := range add {
		d := img.Target
		d.Annotations = map[string]string{annotationImageName: img.Name}
		if tag := refTag(img.Name); tag != "" {
			d.Annotations[ocispec.AnnotationRefName] = tag
		}
		byName[img.Name] = d
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	x := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	x.SchemaVersion = 2
	x.Manifests = unnamed
	for _, n := range names {
		x.Manifests = append(x.Manifests, byName[n])
	}
	return x
}

// refTag returns the tag of a normalized reference, "" when it has none.
func refTag(ref string) string {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case ':':
			return ref[i+1:]
		case '/', '@':
			return ""
		}
	}
	return ""
}

// writeJSONAtomic writes v as JSON to file (atomicfile.WriteFile), so
// readers see the old file or the new one.
func writeJSONAtomic(file string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(file, b, 0o644)
}
