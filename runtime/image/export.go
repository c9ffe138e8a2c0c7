package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/platforms"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// ExportedImage is one image ExportImages wrote (or listed).
type ExportedImage struct {
	// Ref is the normalized reference the image is named by.
	Ref string `json:"name"`
	// Target is the image's top descriptor (manifest or index) as the
	// archive's index.json lists it, without annotations.
	Target ocispec.Descriptor `json:"target"`
	// Blobs are every blob the image needs on this platform, the target
	// included, in the order they were met.
	Blobs []ocispec.Descriptor `json:"blobs"`
	// Source says where the image was found and From names that place.
	Source ImageSource `json:"source"`
	From   string      `json:"from"`
}

// Size is the sum of the sizes of the image's blobs.
func (e ExportedImage) Size() int64 {
	var n int64
	for _, b := range e.Blobs {
		n += b.Size
	}
	return n
}

// ExportOptions tune ExportImages.
type ExportOptions struct {
	// Skip reports blobs the receiver of the archive already has: they are
	// listed in the result but not written. nil writes every blob.
	Skip func(digest.Digest) bool
	// Progress, when set, is called as blob bytes are written: written so
	// far and the total to write. It must not block.
	Progress func(written, total int64)
}

// ExportImages writes an OCI image archive (a tar holding oci-layout,
// index.json and blobs/sha256/...) of the images refs to w, taken from
// containerd, each named in index.json by its normalized reference (the
// io.containerd.image.name annotation, which ImportArchive, image dirs and
// `ctr import` read). An image containerd lacks is first made available as
// EnsureImage would (image dirs, then the registry). For a multi-platform
// image only this host's platform is written. Blobs opts.Skip names are left
// out, so the archive can be incremental; it is then complete only together
// with what the receiver has.
func (c *Client) ExportImages(ctx context.Context, w io.Writer, refs []string, opts ExportOptions) ([]ExportedImage, error) {
	ctx = c.WithNamespace(ctx)
	ctx, release, err := c.withImageLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("export images: %w", err)
	}
	defer release()
	src := &containerdExport{c: c, cs: c.cd.ContentStore()}
	return exportImages(ctx, src, w, refs, opts)
}

// ExportImagesFromDirs is ExportImages taking images only from image dirs
// (OCI layouts, OCI and Docker archives, as WithImageDirs describes them),
// with no containerd. Docker archives are not supported here: their layers
// are not content-addressed blobs.
func ExportImagesFromDirs(ctx context.Context, dirs []string, w io.Writer, refs []string, opts ExportOptions) ([]ExportedImage, error) {
	src := &dirExport{c: &Client{opts: options{imageDirs: dirs}}, opened: map[string]blobSource{}}
	defer src.close()
	return exportImages(ctx, src, w, refs, opts)
}

// exportSource is where exported images come from.
type exportSource interface {
	// resolve finds the image ref and returns its top descriptor, where it
	// was found, and how to read its blobs.
	resolve(ctx context.Context, ref string) (ocispec.Descriptor, ImageSource, string, blobOpener, error)
}

// blobOpener reads one blob of an image.
type blobOpener func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error)

func exportImages(ctx context.Context, src exportSource, w io.Writer, refs []string, opts ExportOptions) ([]ExportedImage, error) {
	var out []ExportedImage
	type blobRef struct {
		img  int
		desc ocispec.Descriptor
		open blobOpener
	}
	var toWrite []blobRef
	written := map[digest.Digest]bool{}
	var total int64
	seenRef := map[string]bool{}
	for _, ref := range refs {
		norm, err := NormalizeRef(ref)
		if err != nil {
			return nil, err
		}
		if seenRef[norm] {
			continue
		}
		seenRef[norm] = true
		target, from, where, open, err := src.resolve(ctx, norm)
		if err != nil {
			return nil, fmt.Errorf("export image %s: %w", norm, err)
		}
		img := ExportedImage{Ref: norm, Target: target, Source: from, From: where}
		img.Target.Annotations = nil
		blobs, err := walkImage(ctx, open, target)
		if err != nil {
			return nil, fmt.Errorf("export image %s from %s: %w", norm, where, err)
		}
		img.Blobs = blobs
		for _, b := range blobs {
			if written[b.Digest] || (opts.Skip != nil && opts.Skip(b.Digest)) {
				continue
			}
			written[b.Digest] = true
			toWrite = append(toWrite, blobRef{img: len(out), desc: b, open: open})
			total += b.Size
		}
		out = append(out, img)
	}

	tw := tar.NewWriter(w)
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := writeTarBytes(tw, ocispec.ImageLayoutFile, layout); err != nil {
		return nil, fmt.Errorf("export images: %w", err)
	}
	var done int64
	for _, b := range toWrite {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("export images: %w", err)
		}
		if err := writeBlob(ctx, tw, b.open, b.desc, func(n int64) {
			if opts.Progress != nil {
				opts.Progress(done+n, total)
			}
		}); err != nil {
			return nil, fmt.Errorf("export image %s: blob %s: %w", out[b.img].Ref, b.desc.Digest, err)
		}
		done += b.desc.Size
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	sorted := append([]ExportedImage(nil), out...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Ref < sorted[j].Ref })
	for _, img := range sorted {
		d := img.Target
		d.Annotations = map[string]string{annotationImageName: img.Ref}
		if tag := refTag(img.Ref); tag != "" {
			d.Annotations[ocispec.AnnotationRefName] = tag
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	idxJSON, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export images: %w", err)
	}
	if err := writeTarBytes(tw, "index.json", idxJSON); err != nil {
		return nil, fmt.Errorf("export images: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("export images: %w", err)
	}
	return out, nil
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

// walkImage lists the blobs of the image whose top descriptor is target,
// on this platform: an index and the manifests of this platform it lists,
// each manifest's config and layers. Non-distributable layers are left out.
func walkImage(ctx context.Context, open blobOpener, target ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	var out []ocispec.Descriptor
	seen := map[digest.Digest]bool{}
	match := platforms.Default()
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if seen[d.Digest] {
			return nil
		}
		if err := d.Digest.Validate(); err != nil {
			return fmt.Errorf("descriptor digest %q: %w", d.Digest, err)
		}
		if d.Digest.Algorithm() != digest.SHA256 {
			return fmt.Errorf("descriptor digest %s: only sha256 is supported", d.Digest)
		}
		if images.IsNonDistributable(d.MediaType) {
			return nil
		}
		seen[d.Digest] = true
		plain := d
		plain.Annotations, plain.Platform, plain.URLs = nil, nil, nil
		out = append(out, plain)
		switch d.MediaType {
		case ocispec.MediaTypeImageIndex, images.MediaTypeDockerSchema2ManifestList:
			var idx ocispec.Index
			if err := readBlobJSON(ctx, open, d, &idx); err != nil {
				return err
			}
			n := 0
			for _, m := range idx.Manifests {
				if m.Platform != nil && !match.Match(*m.Platform) {
					continue
				}
				if err := walk(m); err != nil {
					return err
				}
				n++
			}
			if n == 0 {
				return fmt.Errorf("index %s has no manifest for %s", d.Digest, platforms.DefaultString())
			}
		case ocispec.MediaTypeImageManifest, images.MediaTypeDockerSchema2Manifest:
			var mf ocispec.Manifest
			if err := readBlobJSON(ctx, open, d, &mf); err != nil {
				return err
			}
			for _, l := range append([]ocispec.Descriptor{mf.Config}, mf.Layers...) {
				if err := walk(l); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(target); err != nil {
		return nil, err
	}
	return out, nil
}

func readBlobJSON(ctx context.Context, open blobOpener, d ocispec.Descriptor, v any) error {
	if d.Size > maxIndexBytes {
		return fmt.Errorf("%s %s: %d bytes is too large", d.MediaType, d.Digest, d.Size)
	}
	rc, err := open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxIndexBytes))
	if err != nil {
		return fmt.Errorf("read %s: %w", d.Digest, err)
	}
	if digest.FromBytes(b) != d.Digest {
		return fmt.Errorf("blob %s: content does not match its digest", d.Digest)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s %s: %w", d.MediaType, d.Digest, err)
	}
	return nil
}

// writeBlob copies one blob into the archive, checking its size and digest.
func writeBlob(ctx context.Context, tw *tar.Writer, open blobOpener, d ocispec.Descriptor, progress func(int64)) error {
	rc, err := open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobName(d.Digest), Mode: 0o644, Size: d.Size}); err != nil {
		return err
	}
	v := d.Digest.Verifier()
	pw := &ProgressWriter{W: io.MultiWriter(tw, v), Report: progress}
	n, err := io.Copy(pw, io.LimitReader(rc, d.Size))
	if err != nil {
		return err
	}
	if n != d.Size {
		return fmt.Errorf("%d bytes, want %d", n, d.Size)
	}
	if !v.Verified() {
		return errors.New("content does not match its digest")
	}
	return nil
}

// ProgressWriter counts the bytes written through it to W and, when Report
// is set, reports the count every MiB: for the progress of long writes.
type ProgressWriter struct {
	W      io.Writer
	Report func(written int64)
	n      int64
	last   int64
}

// Write writes p to W and counts it.
func (p *ProgressWriter) Write(b []byte) (int, error) {
	n, err := p.W.Write(b)
	p.n += int64(n)
	if p.Report != nil && p.n-p.last >= 1<<20 {
		p.last = p.n
		p.Report(p.n)
	}
	return n, err
}

// Written is the number of bytes written so far.
func (p *ProgressWriter) Written() int64 { return p.n }

// containerdExport reads images from the client's containerd.
type containerdExport struct {
	c  *Client
	cs content.Store
}

func (e *containerdExport) resolve(ctx context.Context, ref string) (ocispec.Descriptor, ImageSource, string, blobOpener, error) {
	img, err := e.c.cd.GetImage(ctx, ref)
	if err == nil {
		return img.Target(), SourceContainerd, e.c.address, e.open, nil
	}
	if !errors.Is(ConvertErr(err), errdefs.ErrNotFound) {
		return ocispec.Descriptor{}, "", "", nil, fmt.Errorf("look up in containerd at %s: %w", e.c.address, ConvertErr(err))
	}
	got, err := e.c.EnsureImage(ctx, ref, PullIfNotPresent)
	if err != nil {
		return ocispec.Descriptor{}, "", "", nil, err
	}
	return got.img.Target(), got.Source, got.From, e.open, nil
}

func (e *containerdExport) open(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	ra, err := e.cs.ReaderAt(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("read blob %s from containerd: %w", d.Digest, ConvertErr(err))
	}
	return struct {
		io.Reader
		io.Closer
	}{content.NewReader(ra), ra}, nil
}

// dirExport reads images from image dirs.
type dirExport struct {
	c      *Client
	opened map[string]blobSource // by source path
}

func (e *dirExport) resolve(_ context.Context, ref string) (ocispec.Descriptor, ImageSource, string, blobOpener, error) {
	var problems []string
	for _, src := range e.c.sources(&problems) {
		offers, err := e.c.scan(src)
		if err != nil {
			problems = append(problems, fmt.Sprintf("skipped %s (%v)", src, err))
			continue
		}
		for _, di := range offers {
			if !di.matches(ref) {
				continue
			}
			if di.docker != nil {
				problems = append(problems, fmt.Sprintf("%s is a Docker archive, which cannot be exported from", di.path))
				continue
			}
			bs, ok := e.opened[di.path]
			if !ok {
				if bs, err = openBlobSource(di.path); err != nil {
					return ocispec.Descriptor{}, "", "", nil, err
				}
				e.opened[di.path] = bs
			}
			open := func(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
				rc, _, err := bs.open(blobName(d.Digest))
				if err != nil {
					return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
				}
				return rc, nil
			}
			return di.desc, SourceImageDir, di.path, open, nil
		}
	}
	msg := fmt.Sprintf("not in image dirs %v", e.c.opts.imageDirs)
	for _, p := range problems {
		msg += "; " + p
	}
	return ocispec.Descriptor{}, "", "", nil, fmt.Errorf("%s: %w", msg, ErrImageNotFound)
}

func (e *dirExport) close() {
	for _, bs := range e.opened {
		_ = bs.Close()
	}
}
