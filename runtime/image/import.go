package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// annotationImageName is the index annotation containerd's Import names an
// image from (images.AnnotationImageName).
const annotationImageName = images.AnnotationImageName

// Formats of an image-dir source.
const (
	formatLayout  = "OCI layout"
	formatOCITar  = "OCI archive"
	formatDocker  = "Docker archive"
	maxIndexBytes = 16 << 20 // index.json and manifest.json; real ones are kilobytes
)

// ImportArchive imports every named image of an archive into containerd and
// unpacks it, for `kelpie image import FILE...`, and returns the normalized
// names it imported, sorted. path is an OCI archive or a Docker archive (as
// `docker save` writes it; gzip-compressed or not), or an OCI image layout
// directory. Images are named from the io.containerd.image.name annotation,
// an org.opencontainers.image.ref.name that is a full reference, or Docker's
// RepoTags; an archive with no named image is an error.
func (c *Client) ImportArchive(ctx context.Context, path string) ([]string, error) {
	ctx = c.WithNamespace(ctx)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	var (
		r     io.Reader
		total int64
	)
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(path, ocispec.ImageLayoutFile)); err != nil {
			return nil, fmt.Errorf("import %s: a directory must be an OCI image layout (it has no %s): %w", path, ocispec.ImageLayoutFile, errdefs.ErrInvalidArgument)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarDirectory(pw, path)) }()
		defer pr.Close()
		r = pr
		total, _ = dirSize(path)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		defer f.Close()
		total = fi.Size()
		br := bufio.NewReader(f)
		if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
			zr, err := gzip.NewReader(br)
			if err != nil {
				return nil, fmt.Errorf("import %s: %w", path, err)
			}
			r = zr
		} else {
			r = br
		}
	}

	ctx, release, err := c.withImageLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	defer release()
	src := "archive " + path
	report := c.progressReporter("", src)
	cr := &countingReader{r: r, report: func(n int64) {
		report(Progress{Stage: StageImporting, Current: n, Total: total})
	}, every: c.opts.progressInterval}
	imgs, err := c.cd.Import(ctx, cr, containerd.WithImageRefTranslator(refNameTranslator))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, ConvertErr(err))
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("import %s: it names no image (no %s annotation, no full reference in %s, no RepoTags): %w",
			path, annotationImageName, ocispec.AnnotationRefName, errdefs.ErrInvalidArgument)
	}

	is := c.cd.ImageService()
	var names []string
	seen := map[string]bool{}
	for _, img := range imgs {
		orig := img.Name
		norm, err := NormalizeRef(orig)
		if err != nil {
			return names, fmt.Errorf("import %s: %w", path, err)
		}
		if norm != orig {
			// An archive may say "nginx:1.7.9"; kelpie looks images up by
			// their full reference, so keep the image under that name only.
			img.Name = norm
			if _, err := is.Update(ctx, img, "target"); err != nil {
				if _, err := is.Create(ctx, img); err != nil {
					return names, fmt.Errorf("import %s: name image %s: %w", path, norm, ConvertErr(err))
				}
			}
			if err := is.Delete(ctx, orig); err != nil && !errors.Is(ConvertErr(err), errdefs.ErrNotFound) {
				return names, fmt.Errorf("import %s: remove unnormalized name %s: %w", path, orig, ConvertErr(err))
			}
		}
		if seen[norm] {
			continue
		}
		seen[norm] = true
		ci, err := c.cd.GetImage(ctx, norm)
		if err != nil {
			return names, fmt.Errorf("import %s: %s: %w", path, norm, ConvertErr(err))
		}
		report(Progress{Ref: norm, Stage: StageUnpacking})
		if err := c.unpack(ctx, ci); err != nil {
			return names, fmt.Errorf("import %s: %w", path, err)
		}
		report(Progress{Ref: norm, Stage: StageDone})
		names = append(names, norm)
	}
	sort.Strings(names)
	return names, nil
}

// refNameTranslator turns an org.opencontainers.image.ref.name annotation into
// an image name when it is a full reference ("docker.io/library/nginx:1.7.9",
// "nginx:1.7.9"); a bare tag ("1.7.9"), as OCI layouts usually hold, names
// nothing.
func refNameTranslator(refName string) string {
	if !strings.ContainsAny(refName, ":/@") {
		return ""
	}
	norm, err := NormalizeRef(refName)
	if err != nil {
		return ""
	}
	return norm
}

// --- image dirs -------------------------------------------------------------

// dirImage is one image an image-dir source offers.
type dirImage struct {
	path   string // the layout directory or archive file
	format string
	names  []string           // normalized
	desc   ocispec.Descriptor // OCI: the index entry
	docker *dockerManifest    // Docker archive: the manifest.json entry
}

// dockerManifest is one entry of a Docker archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// scanEntry caches what one source offers, valid while sig is unchanged.
type scanEntry struct {
	sig    string
	images []dirImage
	err    error
}

// importFromDirs imports ref from the first image-dir source that offers it.
// It returns the image, or nil and one line per problem for the error message;
// err only when the context ends.
func (c *Client) importFromDirs(ctx context.Context, ref string) (*Image, []string, error) {
	var problems []string
	for _, src := range c.sources(&problems) {
		offers, err := c.scan(src)
		if err != nil {
			problems = append(problems, fmt.Sprintf("skipped %s (%v)", src, err))
			continue
		}
		for _, di := range offers {
			if !di.matches(ref) {
				continue
			}
			img, err := c.importDirImage(ctx, di, ref)
			if err == nil {
				return img, nil, nil
			}
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("import image %s from %s: %w", ref, di.path, ctx.Err())
			}
			problems = append(problems, fmt.Sprintf("import from %s failed (%v)", di.path, err))
		}
	}
	tried := []string{fmt.Sprintf("not in image dirs [%s]", strings.Join(c.opts.imageDirs, " "))}
	return nil, append(tried, problems...), nil
}

// sources lists the layouts and archives of the image dirs, in order: a dir
// that is a layout (or an archive file) is one source; otherwise its
// subdirectories that are layouts and its *.tar files, sorted by name.
func (c *Client) sources(problems *[]string) []string {
	var out []string
	for _, dir := range c.opts.imageDirs {
		fi, err := os.Stat(dir)
		if err != nil {
			*problems = append(*problems, fmt.Sprintf("image dir %s unreadable (%v)", dir, err))
			continue
		}
		if !fi.IsDir() || isLayout(dir) {
			out = append(out, dir)
			continue
		}
		entries, err := os.ReadDir(dir) // sorted by name
		if err != nil {
			*problems = append(*problems, fmt.Sprintf("image dir %s unreadable (%v)", dir, err))
			continue
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			switch {
			case e.IsDir() && isLayout(p):
				out = append(out, p)
			case !e.IsDir() && strings.HasSuffix(e.Name(), ".tar"):
				out = append(out, p)
			}
		}
	}
	return out
}

func isLayout(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile))
	return err == nil
}

// scan returns the images a source offers, from the cache while the source
// is unchanged.
func (c *Client) scan(src string) ([]dirImage, error) {
	sigPath := src
	if isLayout(src) {
		sigPath = filepath.Join(src, "index.json")
	}
	fi, err := os.Stat(sigPath)
	if err != nil {
		return nil, err
	}
	sig := fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())

	c.scanMu.Lock()
	defer c.scanMu.Unlock()
	if e, ok := c.scanCache[src]; ok && e.sig == sig {
		return e.images, e.err
	}
	imgs, err := scanSource(src)
	if c.scanCache == nil {
		c.scanCache = map[string]scanEntry{}
	}
	c.scanCache[src] = scanEntry{sig: sig, images: imgs, err: err}
	return imgs, err
}

func scanSource(src string) ([]dirImage, error) {
	bs, err := openBlobSource(src)
	if err != nil {
		return nil, err
	}
	defer bs.Close()
	format := formatLayout
	if _, ok := bs.(*tarSource); ok {
		format = formatOCITar
	}

	if bs.has(ocispec.ImageLayoutFile) {
		var layout ocispec.ImageLayout
		if err := readJSON(bs, ocispec.ImageLayoutFile, &layout); err != nil {
			return nil, err
		}
		if layout.Version != ocispec.ImageLayoutVersion {
			return nil, fmt.Errorf("unsupported OCI layout version %q", layout.Version)
		}
		var idx ocispec.Index
		if err := readJSON(bs, "index.json", &idx); err != nil {
			return nil, err
		}
		var out []dirImage
		for _, m := range idx.Manifests {
			di := dirImage{path: src, format: format, desc: m}
			if n := m.Annotations[annotationImageName]; n != "" {
				if norm, err := NormalizeRef(n); err == nil {
					di.names = append(di.names, norm)
				}
			}
			if n := refNameTranslator(m.Annotations[ocispec.AnnotationRefName]); n != "" && (len(di.names) == 0 || di.names[0] != n) {
				di.names = append(di.names, n)
			}
			out = append(out, di)
		}
		return out, nil
	}
	if bs.has("manifest.json") {
		var mfs []dockerManifest
		if err := readJSON(bs, "manifest.json", &mfs); err != nil {
			return nil, err
		}
		var out []dirImage
		for i := range mfs {
			di := dirImage{path: src, format: formatDocker, docker: &mfs[i]}
			for _, tag := range mfs[i].RepoTags {
				if norm, err := NormalizeRef(tag); err == nil {
					di.names = append(di.names, norm)
				}
			}
			out = append(out, di)
		}
		return out, nil
	}
	return nil, errors.New("neither an OCI layout nor a Docker archive (no oci-layout, no manifest.json)")
}

// matches reports whether the image is ref: by name, or for a reference with
// a digest, by manifest digest within the same repository.
func (di dirImage) matches(ref string) bool {
	for _, n := range di.names {
		if n == ref {
			return true
		}
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false
	}
	canon, ok := named.(reference.Canonical)
	if !ok || di.desc.Digest == "" || canon.Digest() != di.desc.Digest {
		return false
	}
	for _, n := range di.names {
		if other, err := reference.ParseNormalizedNamed(n); err == nil && other.Name() == named.Name() {
			return true
		}
	}
	return false
}

// importDirImage imports just the one image di into containerd under the name
// ref, and unpacks it.
func (c *Client) importDirImage(ctx context.Context, di dirImage, ref string) (*Image, error) {
	bs, err := openBlobSource(di.path)
	if err != nil {
		return nil, err
	}
	defer bs.Close()

	var (
		write func(io.Writer) error
		total int64
	)
	if di.docker != nil {
		write, total, err = dockerSubset(bs, *di.docker, ref)
	} else {
		write, total, err = ociSubset(bs, di.desc, ref)
	}
	if err != nil {
		return nil, err
	}

	report := c.progressReporter(ref, fmt.Sprintf("image dir %s (%s)", di.path, di.format))
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(write(pw))
	}()
	cr := &countingReader{r: pr, every: c.opts.progressInterval, report: func(n int64) {
		report(Progress{Stage: StageImporting, Current: n, Total: total})
	}}
	imgs, err := c.cd.Import(ctx, cr)
	pr.CloseWithError(errors.New("import finished")) // stops the writer if Import gave up early
	<-done
	if err != nil {
		return nil, ConvertErr(err)
	}
	var found *images.Image
	for i := range imgs {
		if imgs[i].Name == ref {
			found = &imgs[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("containerd imported no image named %s", ref)
	}
	ci := containerd.NewImage(c.cd, *found)
	report(Progress{Stage: StageUnpacking, Current: total, Total: total})
	if err := c.unpack(ctx, ci); err != nil {
		return nil, err
	}
	report(Progress{Stage: StageDone, Current: total, Total: total})
	img := c.imageOf(ci, SourceImageDir, di.path)
	return &img, nil
}

// ociSubset returns a writer of an OCI archive that holds only desc (named
// ref) and the blobs it needs on this platform, and the archive's blob bytes.
func ociSubset(bs blobSource, desc ocispec.Descriptor, ref string) (func(io.Writer) error, int64, error) {
	var (
		blobs []ocispec.Descriptor
		seen  = map[digest.Digest]bool{}
		match = platforms.Default()
		total int64
	)
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if seen[d.Digest] {
			return nil
		}
		if err := d.Digest.Validate(); err != nil {
			return fmt.Errorf("descriptor digest %q: %w", d.Digest, err)
		}
		name := blobName(d.Digest)
		if !bs.has(name) {
			if images.IsNonDistributable(d.MediaType) {
				return nil // a foreign layer fetched from its URLs, if ever
			}
			return fmt.Errorf("lacks blob %s (%s)", d.Digest, d.MediaType)
		}
		seen[d.Digest] = true
		blobs = append(blobs, d)
		total += d.Size
		switch d.MediaType {
		case ocispec.MediaTypeImageIndex, images.MediaTypeDockerSchema2ManifestList:
			var idx ocispec.Index
			if err := readJSON(bs, name, &idx); err != nil {
				return err
			}
			for _, m := range idx.Manifests {
				if m.Platform != nil && !match.Match(*m.Platform) {
					continue
				}
				if err := walk(m); err != nil {
					return err
				}
			}
		case ocispec.MediaTypeImageManifest, images.MediaTypeDockerSchema2Manifest:
			var mf ocispec.Manifest
			if err := readJSON(bs, name, &mf); err != nil {
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
	if err := walk(desc); err != nil {
		return nil, 0, err
	}

	top := desc
	top.Annotations = map[string]string{annotationImageName: ref}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{top}}
	idx.SchemaVersion = 2
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return nil, 0, err
	}
	layoutJSON, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})

	return func(w io.Writer) error {
		tw := tar.NewWriter(w)
		if err := writeTarBytes(tw, ocispec.ImageLayoutFile, layoutJSON); err != nil {
			return err
		}
		for _, b := range blobs {
			if err := copyTarEntry(tw, bs, blobName(b.Digest)); err != nil {
				return err
			}
		}
		if err := writeTarBytes(tw, "index.json", idxJSON); err != nil {
			return err
		}
		return tw.Close()
	}, total, nil
}

// dockerSubset returns a writer of a Docker archive that holds only the
// manifest.json entry m, tagged ref, and the files it names.
func dockerSubset(bs blobSource, m dockerManifest, ref string) (func(io.Writer) error, int64, error) {
	files := append([]string{m.Config}, m.Layers...)
	var total int64
	for _, f := range files {
		size, ok := bs.size(f)
		if !ok {
			return nil, 0, fmt.Errorf("lacks %s named in manifest.json", f)
		}
		total += size
	}
	m.RepoTags = []string{ref}
	mfJSON, err := json.Marshal([]dockerManifest{m})
	if err != nil {
		return nil, 0, err
	}
	return func(w io.Writer) error {
		tw := tar.NewWriter(w)
		written := map[string]bool{}
		for _, f := range files {
			if written[f] {
				continue
			}
			written[f] = true
			if err := copyTarEntry(tw, bs, f); err != nil {
				return err
			}
		}
		if err := writeTarBytes(tw, "manifest.json", mfJSON); err != nil {
			return err
		}
		return tw.Close()
	}, total, nil
}

func blobName(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

func writeTarBytes(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func copyTarEntry(tw *tar.Writer, bs blobSource, name string) error {
	rc, size, err := bs.open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, rc); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	return nil
}

// --- reading layouts and archives ---------------------------------------------

// blobSource reads the files of an OCI layout directory or of an archive by
// slash-separated name relative to its root.
type blobSource interface {
	has(name string) bool
	size(name string) (int64, bool)
	open(name string) (io.ReadCloser, int64, error)
	Close() error
}

func openBlobSource(p string) (blobSource, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return dirSource{root: p}, nil
	}
	return openTarSource(p)
}

type dirSource struct{ root string }

func (d dirSource) path(name string) (string, bool) {
	name = path.Clean(name)
	if !fs.ValidPath(name) {
		return "", false
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), true
}

func (d dirSource) size(name string) (int64, bool) {
	p, ok := d.path(name)
	if !ok {
		return 0, false
	}
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

func (d dirSource) has(name string) bool { _, ok := d.size(name); return ok }

func (d dirSource) open(name string) (io.ReadCloser, int64, error) {
	p, ok := d.path(name)
	if !ok {
		return nil, 0, fmt.Errorf("invalid name %q", name)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func (dirSource) Close() error { return nil }

// tarSource reads an uncompressed tar by random access: one pass over the
// headers (seeking past the data) records where each file's data lies.
type tarSource struct {
	f       *os.File
	entries map[string]tarEntry
}

type tarEntry struct{ off, size int64 }

func openTarSource(p string) (*tarSource, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	ts := &tarSource{f: f, entries: map[string]tarEntry{}}
	links := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read tar: %w", err)
		}
		name := path.Clean(h.Name)
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archives still use TypeRegA
			off, err := f.Seek(0, io.SeekCurrent) // archive/tar reads headers without buffering ahead
			if err != nil {
				f.Close()
				return nil, err
			}
			ts.entries[name] = tarEntry{off: off, size: h.Size}
		case tar.TypeSymlink: // Docker archives link repeated layers
			links[name] = path.Join(path.Dir(name), h.Linkname)
		}
	}
	for name, target := range links {
		if e, ok := ts.entries[path.Clean(target)]; ok {
			ts.entries[name] = e
		}
	}
	return ts, nil
}

func (t *tarSource) size(name string) (int64, bool) {
	e, ok := t.entries[path.Clean(name)]
	return e.size, ok
}

func (t *tarSource) has(name string) bool { _, ok := t.size(name); return ok }

func (t *tarSource) open(name string) (io.ReadCloser, int64, error) {
	e, ok := t.entries[path.Clean(name)]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return io.NopCloser(io.NewSectionReader(t.f, e.off, e.size)), e.size, nil
}

func (t *tarSource) Close() error { return t.f.Close() }

func readJSON(bs blobSource, name string, v any) error {
	rc, _, err := bs.open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := json.NewDecoder(io.LimitReader(rc, maxIndexBytes)).Decode(v); err != nil {
		return fmt.Errorf("parse %s: %w", name, err)
	}
	return nil
}

// tarDirectory writes the regular files under root as a tar, names relative
// to root, for importing a whole OCI layout.
func tarDirectory(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return copyTarEntry(tw, dirSource{root: root}, filepath.ToSlash(rel))
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func dirSize(root string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			total += fi.Size()
		}
		return err
	})
	return total, err
}

// countingReader counts the bytes read through it and reports the count at
// most every `every`, and once more at EOF.
type countingReader struct {
	r      io.Reader
	n      atomic.Int64
	every  time.Duration
	last   time.Time
	report func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	total := c.n.Add(int64(n))
	if c.report != nil && (err == io.EOF || time.Since(c.last) >= c.every) {
		c.last = time.Now()
		c.report(total)
	}
	return n, err
}
