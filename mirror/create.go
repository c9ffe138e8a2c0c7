package mirror

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/source"
)

// Progress is one report of long work: a stage ("git", "images", "write",
// "read", "commit") and bytes done of a total (0 while unknown).
type Progress struct {
	Stage          string
	Current, Total int64
}

// ProgressFunc receives progress reports, from one goroutine at a time. It
// must not block.
type ProgressFunc func(Progress)

// ImageExporter writes an OCI archive of images: *image.Client's
// ExportImages (containerd), or image.ExportImagesFromDirs bound to
// directories (see DirExporter).
type ImageExporter interface {
	ExportImages(ctx context.Context, w io.Writer, refs []string, opts image.ExportOptions) ([]image.ExportedImage, error)
}

// DirExporter exports images from image dirs (OCI layouts and archives),
// without containerd.
type DirExporter []string

// ExportImages implements ImageExporter.
func (d DirExporter) ExportImages(ctx context.Context, w io.Writer, refs []string, opts image.ExportOptions) ([]image.ExportedImage, error) {
	return image.ExportImagesFromDirs(ctx, d, w, refs, opts)
}

// CreateConfig configures Create.
type CreateConfig struct {
	// Repo is a local repository (a path: work tree or bare) or a URL
	// (https://, ssh://, file://, …) fetched into a temporary cache.
	Repo string
	// Refs are branches or tags ("main", "v1.2", "refs/heads/main");
	// default HEAD's branch for a path, "main" for a URL.
	Refs []string
	// Path is the manifests' directory in the repository (default ".").
	Path string
	// Out is the bundle file to write. It is written through a temporary
	// file in the same directory and renamed into place.
	Out string
	// Since makes the bundle incremental: a bundle file made earlier (its
	// refs' commits and its images' blobs are left out) or a commit (its
	// history, and the blobs of the images its manifests use, are left out).
	Since string
	// Images is where images come from.
	Images ImageExporter
	// Progress, if set, receives progress reports.
	Progress ProgressFunc
	// Now stamps Index.Created; default time.Now.
	Now func() time.Time
}

func (c *CreateConfig) validate() error {
	if c.Repo == "" {
		return errors.New("Repo: a repository path or URL is needed")
	}
	if c.Out == "" {
		return errors.New("Out: a bundle file name is needed")
	}
	if c.Images == nil {
		return errors.New("Images: an image source is needed")
	}
	if c.Path == "" {
		c.Path = "."
	}
	c.Path = path.Clean(strings.TrimPrefix(filepath.ToSlash(c.Path), "/"))
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Progress == nil {
		c.Progress = func(Progress) {}
	}
	return nil
}

// Create writes a bundle of cfg.Refs of cfg.Repo and of the images their
// manifests use, and returns its index and ID.
func Create(ctx context.Context, cfg CreateConfig) (*Index, string, error) {
	if err := cfg.validate(); err != nil {
		return nil, "", fmt.Errorf("create bundle: %w", err)
	}
	x, id, err := create(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("create bundle %s: %w", cfg.Out, err)
	}
	return x, id, nil
}

func create(ctx context.Context, cfg CreateConfig) (*Index, string, error) {
	repo, display, cleanup, err := openRepo(ctx, cfg.Repo, cfg.Refs)
	if err != nil {
		return nil, "", err
	}
	defer cleanup()

	refNames := cfg.Refs
	if len(refNames) == 0 {
		refNames = []string{"HEAD"}
	}
	x := &Index{Format: Format, Created: cfg.Now().UTC().Truncate(time.Second), Repo: display, Path: cfg.Path}
	imageSet := map[string]bool{}
	var images []string
	type lockedRef struct {
		ref, short string
		lock       ImageLock
		used       []string
	}
	var locks []lockedRef // the refs whose commit has a LockFile
	for _, name := range refNames {
		ref, commit, err := repo.ResolveBundleRef(name)
		if err != nil {
			return nil, "", err
		}
		full := ref.Name
		for _, r := range x.Refs {
			if r.Name == full {
				return nil, "", fmt.Errorf("ref %s given twice", full)
			}
		}
		x.Refs = append(x.Refs, ref)
		fsys, err := repo.FS(commit)
		if err != nil {
			return nil, "", fmt.Errorf("%s at %s: %w", full, commit.Short, err)
		}
		imgs, err := manifestImages(fsys, cfg.Path)
		if err != nil {
			return nil, "", fmt.Errorf("manifests of %s at %s: %w", full, commit.Short, err)
		}
		lock, err := readLock(fsys)
		if err != nil {
			return nil, "", fmt.Errorf("%s at %s: %w", full, commit.Short, err)
		}
		if lock != nil {
			locks = append(locks, lockedRef{ref: full, short: commit.Short, lock: lock, used: imgs})
		}
		for _, img := range imgs {
			if !imageSet[img] {
				imageSet[img] = true
				images = append(images, img)
			}
		}
	}

	// What the receiver has already.
	var since []string
	skip := map[digest.Digest]bool{}
	if cfg.Since != "" {
		basis, err := basisOf(ctx, repo, cfg)
		if err != nil {
			return nil, "", fmt.Errorf("--since %s: %w", cfg.Since, err)
		}
		since = basis.commits
		for _, d := range basis.blobs {
			skip[d] = true
		}
		x.Since = &Basis{Bundle: basis.bundle, Commits: basis.commits}
	}

	tmp, err := os.MkdirTemp(filepath.Dir(cfg.Out), ".kelpie-bundle-*")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)

	// The git part.
	cfg.Progress(Progress{Stage: "git"})
	gitFile := filepath.Join(tmp, GitPart)
	var hdr source.BundleHeader
	gitPart, err := writePart(gitFile, GitPart, func(w io.Writer) error {
		var err error
		hdr, err = repo.WriteBundle(w, x.Refs, since)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if x.Since != nil {
		x.Since.Prerequisites = hdr.Prerequisites
	}

	// The images part.
	imagesFile := filepath.Join(tmp, ImagesPart)
	var exported []image.ExportedImage
	imagesPart, err := writePart(imagesFile, ImagesPart, func(w io.Writer) error {
		var err error
		exported, err = cfg.Images.ExportImages(ctx, w, images, image.ExportOptions{
			Skip: func(d digest.Digest) bool { return skip[d] },
			Progress: func(n, total int64) {
				cfg.Progress(Progress{Stage: "images", Current: n, Total: total})
			},
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	x.Parts = []Part{gitPart, imagesPart}
	targets := map[string]digest.Digest{}
	for _, e := range exported {
		targets[e.Ref] = e.Target.Digest
	}
	for _, l := range locks {
		if err := checkLock(l.ref, l.short, l.lock, l.used, targets); err != nil {
			return nil, "", err
		}
	}
	carried := map[digest.Digest]bool{}
	for _, e := range exported {
		img := Image{Name: e.Ref, Target: e.Target, Blobs: e.Blobs}
		for _, b := range e.Blobs {
			if !skip[b.Digest] && !carried[b.Digest] {
				carried[b.Digest] = true
				img.Carried++
			}
		}
		x.Images = append(x.Images, img)
	}
	sortImages(x.Images)

	// The bundle: index, then the parts.
	indexJSON, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return nil, "", err
	}
	total := gitPart.Size + imagesPart.Size
	if err := writeBundle(cfg.Out, indexJSON, []string{gitFile, imagesFile}, func(n int64) {
		cfg.Progress(Progress{Stage: "write", Current: n, Total: total})
	}); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(indexJSON)
	return x, hex.EncodeToString(sum[:]), nil
}

// imagesAt lists the images the manifests under dir at commit use.
func imagesAt(repo *source.Repo, c source.Commit, dir string) ([]string, error) {
	fsys, err := repo.FS(c)
	if err != nil {
		return nil, err
	}
	return manifestImages(fsys, dir)
}

// basis is what a receiver has: commits and image blobs.
type basis struct {
	bundle  string
	commits []string
	blobs   []digest.Digest
}

// basisOf reads cfg.Since: a bundle file, else a commit of the repository.
func basisOf(ctx context.Context, repo *source.Repo, cfg CreateConfig) (basis, error) {
	if fi, err := os.Stat(cfg.Since); err == nil && fi.Mode().IsRegular() {
		bx, id, err := ReadIndex(cfg.Since)
		if err != nil {
			return basis{}, err
		}
		b := basis{bundle: id}
		for _, r := range bx.Refs {
			b.commits = append(b.commits, r.Commit)
		}
		for _, img := range bx.Images {
			for _, d := range img.Blobs {
				b.blobs = append(b.blobs, d.Digest)
			}
		}
		return b, nil
	}
	c, err := repo.Resolve(cfg.Since)
	if err != nil {
		return basis{}, fmt.Errorf("neither a bundle file nor a commit: %w", err)
	}
	b := basis{commits: []string{c.Hash}}
	imgs, err := imagesAt(repo, c, cfg.Path)
	if err != nil {
		return basis{}, fmt.Errorf("manifests at %s: %w", c.Short, err)
	}
	if len(imgs) == 0 {
		return b, nil
	}
	// The images as they are now: list their blobs without writing any.
	exported, err := cfg.Images.ExportImages(ctx, io.Discard, imgs, image.ExportOptions{Skip: func(digest.Digest) bool { return true }})
	if err != nil {
		return basis{}, err
	}
	for _, e := range exported {
		for _, d := range e.Blobs {
			b.blobs = append(b.blobs, d.Digest)
		}
	}
	return b, nil
}

// openRepo opens a local repository, or fetches refs of a URL into a
// temporary cache. It returns the repository, how to name it in the index,
// and a cleanup function.
func openRepo(ctx context.Context, repo string, refs []string) (*source.Repo, string, func(), error) {
	if fi, err := os.Stat(repo); err == nil && fi.IsDir() {
		r, err := source.OpenLocal(repo)
		if err != nil {
			return nil, "", nil, err
		}
		abs, _ := filepath.Abs(repo)
		return r, abs, func() { r.Close() }, nil
	}
	display := repo
	if u, err := url.Parse(repo); err == nil && u.User != nil {
		u.User = nil
		display = u.String()
	}
	cache, err := os.MkdirTemp("", "kelpie-mirror-cache-*")
	if err != nil {
		return nil, "", nil, err
	}
	cleanup := func() { os.RemoveAll(cache) }
	if len(refs) == 0 {
		refs = []string{"main"}
	}
	for _, ref := range refs {
		rem, err := source.NewRemote(source.RemoteConfig{URLs: []string{repo}, Ref: ref, CacheDir: cache})
		if err != nil {
			cleanup()
			return nil, "", nil, err
		}
		_, err = rem.Fetch(ctx, "")
		rem.Close()
		if err != nil {
			cleanup()
			return nil, "", nil, err
		}
	}
	r, err := source.OpenLocal(cache)
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return r, display, func() { r.Close(); cleanup() }, nil
}

// writePart writes a part file through write and returns its checksum.
func writePart(file, name string, write func(io.Writer) error) (Part, error) {
	f, err := os.Create(file)
	if err != nil {
		return Part{}, err
	}
	h := sha256.New()
	cw := &image.ProgressWriter{W: io.MultiWriter(f, h)}
	if err := write(cw); err != nil {
		f.Close()
		return Part{}, err
	}
	if err := f.Close(); err != nil {
		return Part{}, err
	}
	return Part{Name: name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: cw.Written()}, nil
}

// writeBundle writes the bundle tar at out (atomicfile.Write: through a
// temporary file and a rename): the index, then each part file under its
// base name.
func writeBundle(out string, indexJSON []byte, parts []string, progress func(int64)) error {
	return atomicfile.Write(out, 0o600, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		hdr := func(name string, size int64) *tar.Header {
			return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
		}
		err := tw.WriteHeader(hdr(IndexName, int64(len(indexJSON))))
		if err == nil {
			_, err = tw.Write(indexJSON)
		}
		var done int64
		for _, p := range parts {
			if err != nil {
				break
			}
			err = copyPart(tw, p, hdr, func(n int64) { progress(done + n) })
			if fi, serr := os.Stat(p); serr == nil {
				done += fi.Size()
			}
		}
		if err == nil {
			err = tw.Close()
		}
		return err
	})
}

func copyPart(tw *tar.Writer, file string, hdr func(string, int64) *tar.Header, progress func(int64)) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr(filepath.Base(file), fi.Size())); err != nil {
		return err
	}
	cw := &image.ProgressWriter{W: tw, Report: progress}
	_, err = io.Copy(cw, f)
	return err
}

// hashReader hashes and counts what is read through it. The hashing runs
// on a goroutine of its own, beside whatever the reader's consumer does
// with the bytes (an import hashes every blob a second time, by its own
// digest): on two cores that takes the part's checksum off the critical
// path. sum waits for it.
type hashReader struct {
	r    io.Reader
	n    int64
	ch   chan []byte
	done chan struct{}
	h    hash.Hash
}

var hashBufs = sync.Pool{New: func() any { return make([]byte, 0, 64<<10) }}

func newHashReader(r io.Reader) *hashReader {
	hr := &hashReader{r: r, ch: make(chan []byte, 16), done: make(chan struct{}), h: sha256.New()}
	go func(ch <-chan []byte) {
		defer close(hr.done)
		for b := range ch {
			hr.h.Write(b)
			hashBufs.Put(b[:0]) //nolint:staticcheck // a slice is fine here
		}
	}(hr.ch)
	return hr
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	for rest := p[:n]; len(rest) > 0; {
		b := hashBufs.Get().([]byte)
		k := min(len(rest), cap(b))
		h.ch <- append(b, rest[:k]...)
		rest = rest[k:]
	}
	h.n += int64(n)
	return n, err
}

// sum returns the hex SHA-256 of everything read. The reader must not be
// read afterwards.
func (h *hashReader) sum() string {
	if h.ch != nil {
		close(h.ch)
		h.ch = nil
		<-h.done
	}
	return hex.EncodeToString(h.h.Sum(nil))
}
