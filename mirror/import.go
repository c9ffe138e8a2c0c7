package mirror

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/source"
)

// Names inside a mirror directory.
const (
	// RepoDir is the bare repository: an agent's --repo DIR/site.git.
	RepoDir = "site.git"
	// ImagesDir is the OCI image layout: an agent's --image-dir DIR/images.
	ImagesDir = "images"
	// stagingPrefix starts the name of an import's staging directory.
	stagingPrefix = ".staging-"
)

// ErrBusy means another import holds the mirror directory.
var ErrBusy = errors.New("another import is running on this mirror")

// ImportConfig configures Import.
type ImportConfig struct {
	// File is the bundle; Dir the mirror directory (created if missing).
	File, Dir string
	// Force accepts refs that do not descend from what the mirror has.
	Force bool
	// VerifyKeysFile holds armored OpenPGP public keys: the commit of every
	// ref the bundle carries must be signed by one of them, and the digest
	// of every image the bundle names must be pinned by the LockFile of
	// one of those commits (or by the image's reference itself).
	VerifyKeysFile string
	// Progress, if set, receives progress reports.
	Progress ProgressFunc
}

// validate fills defaults and rejects nonsense, naming the field.
func (c *ImportConfig) validate() error {
	if c.File == "" {
		return errors.New("File: a bundle file is needed")
	}
	if c.Dir == "" {
		return errors.New("Dir: a mirror directory is needed")
	}
	if c.Progress == nil {
		c.Progress = func(Progress) {}
	}
	return nil
}

// ImportResult says what an import did.
type ImportResult struct {
	// Bundle is the ID of the bundle imported.
	Bundle string `json:"bundle"`
	// Refs are the ref updates, in the bundle's order.
	Refs []source.RefUpdate `json:"refs"`
	// Images are the images the mirror now names for the bundle.
	Images []string `json:"images"`
	// BlobsAdded and BytesAdded count image blobs new to the mirror.
	BlobsAdded int   `json:"blobsAdded"`
	BytesAdded int64 `json:"bytesAdded"`
}

// Import imports a bundle into a mirror directory. Nothing in the mirror
// changes until the whole bundle has been read and verified: every part
// against the index's SHA-256 and size, every image blob against its
// digest, the git pack against its own checksum; the git history must
// connect to what the mirror has and move every existing ref forward
// (unless Force), and with VerifyKeysFile carry trusted signatures and pin
// every image's digest in their LockFile; every
// blob an image needs must be in the bundle or the mirror. Everything is
// staged in DIR/.staging-* first.
//
// Then, in this order: image blobs are renamed into DIR/images (content
// addressed: adding one is harmless), DIR/images/index.json is replaced by
// a rename, the git pack is moved into DIR/site.git (index first), and the
// refs are replaced at once by renaming packed-refs (WatchRefs sees it). A
// first import renames whole staged directories into place instead. An
// import interrupted before that point leaves the mirror as it was; one
// interrupted during it leaves at most unreferenced blobs, packs or image
// names ahead of the refs, and the next import completes it.
//
// Imports of one directory are serialised by a lock on the directory.
func Import(ctx context.Context, cfg ImportConfig) (*ImportResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("import bundle: %w", err)
	}
	res, err := importBundle(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("import %s into %s: %w", cfg.File, cfg.Dir, err)
	}
	return res, nil
}

func importBundle(ctx context.Context, cfg ImportConfig) (res *ImportResult, err error) {
	f, err := os.Open(cfg.File)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}

	created := false
	if _, err := os.Stat(cfg.Dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, err
		}
		created = true
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer func() {
		if err != nil && created {
			os.Remove(cfg.Dir) // only if still empty
		}
	}()
	if err := removeStale(cfg.Dir); err != nil {
		return nil, err
	}
	if err := checkImagesDir(filepath.Join(cfg.Dir, ImagesDir)); err != nil {
		return nil, err
	}

	staging, err := os.MkdirTemp(cfg.Dir, stagingPrefix)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)

	cr := &progressReader{r: f, report: func(n int64) {
		cfg.Progress(Progress{Stage: "read", Current: n, Total: fi.Size()})
	}}
	tr := tar.NewReader(cr)
	x, id, err := readIndex(tr)
	if err != nil {
		return nil, err
	}
	st, imgIndex, err := stageParts(ctx, tr, x, cfg.Dir, staging)
	if st != nil {
		defer st.Close()
	}
	if err != nil {
		return nil, err
	}
	cfg.Progress(Progress{Stage: "read", Current: fi.Size(), Total: fi.Size()})

	// Checks, with nothing touched yet.
	if err := sameRefs(x.Refs, st.Header().Refs); err != nil {
		return nil, err
	}
	ups, err := st.Check(source.BundleCheck{Force: cfg.Force, VerifyKeysFile: cfg.VerifyKeysFile})
	if err != nil {
		return nil, err
	}
	if cfg.VerifyKeysFile != "" {
		// The index that names the images is not signed: their digests
		// must be pinned by what the signed commits hold.
		if err := checkImagesSigned(x, st); err != nil {
			return nil, err
		}
	}
	stagedImages := filepath.Join(staging, ImagesDir)
	mirrorImages := filepath.Join(cfg.Dir, ImagesDir)
	if err := checkImages(x, imgIndex, stagedImages, mirrorImages); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Commit: images, then git objects, then refs.
	cfg.Progress(Progress{Stage: "commit"})
	res = &ImportResult{Bundle: id, Refs: ups}
	for _, img := range x.Images {
		res.Images = append(res.Images, img.Name)
	}
	if res.BlobsAdded, res.BytesAdded, err = commitImages(x, stagedImages, mirrorImages); err != nil {
		return nil, err
	}
	if err := st.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// stageParts reads the parts after the index into staging, checking each
// against the index. It returns the staged git bundle and the image
// archive's index (nil if the bundle has no images part).
func stageParts(ctx context.Context, tr *tar.Reader, x *Index, dir, staging string) (*source.StagedBundle, *ocispec.Index, error) {
	var (
		st       *source.StagedBundle
		imgIndex *ocispec.Index
		seen     = map[string]bool{}
	)
	for {
		if err := ctx.Err(); err != nil {
			return st, nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, nil, fmt.Errorf("%w: %w", ErrCorrupt, unexpectedEOF(err))
		}
		want, ok := x.part(h.Name)
		if !ok || seen[h.Name] {
			return st, nil, fmt.Errorf("%w: unexpected entry %q", ErrCorrupt, h.Name)
		}
		seen[h.Name] = true
		if h.Size != want.Size {
			return st, nil, fmt.Errorf("%w: %s is %d bytes, the index says %d", ErrCorrupt, h.Name, h.Size, want.Size)
		}
		hr := newHashReader(tr)
		switch h.Name {
		case GitPart:
			st, err = source.StageBundle(filepath.Join(dir, RepoDir), filepath.Join(staging, RepoDir), hr)
		case ImagesPart:
			imgIndex, err = stageImages(ctx, hr, filepath.Join(staging, ImagesDir))
		}
		if cerr := ctx.Err(); cerr != nil {
			hr.sum()
			return st, nil, cerr
		}
		// Read to the end whatever happened, so a checksum mismatch is
		// reported as such rather than as the damage it caused.
		_, cerr := io.Copy(io.Discard, hr)
		sum := hr.sum()
		if cerr != nil {
			return st, nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, h.Name, unexpectedEOF(cerr))
		}
		if hr.n != want.Size || sum != want.SHA256 {
			return st, nil, fmt.Errorf("%w: %s: SHA-256 %s does not match the index's %s", ErrCorrupt, h.Name, sum, want.SHA256)
		}
		if err != nil {
			return st, nil, err
		}
	}
	for _, p := range x.Parts {
		if !seen[p.Name] {
			return st, nil, fmt.Errorf("%w: %s missing (truncated?)", ErrCorrupt, p.Name)
		}
	}
	if imgIndex == nil {
		imgIndex = &ocispec.Index{}
	}
	return st, imgIndex, nil
}

// sameRefs checks that the git bundle carries exactly the refs the index
// lists.
func sameRefs(index, header []source.BundleRef) error {
	if len(index) != len(header) {
		return fmt.Errorf("%w: the index lists %d refs, the git bundle %d", ErrCorrupt, len(index), len(header))
	}
	m := map[string]string{}
	for _, r := range header {
		m[r.Name] = r.Commit
	}
	for _, r := range index {
		if m[r.Name] != r.Commit {
			return fmt.Errorf("%w: ref %s is %s in the index but %q in the git bundle", ErrCorrupt, r.Name, r.Commit, m[r.Name])
		}
	}
	return nil
}

// checkImages checks that the image archive names every image of the index
// with the same target, and that every blob an image needs is staged or
// already in the mirror with the right size.
func checkImages(x *Index, archive *ocispec.Index, staged, mirror string) error {
	named := map[string]digest.Digest{}
	for _, d := range archive.Manifests {
		named[d.Annotations[annotationImageName]] = d.Digest
	}
	for _, img := range x.Images {
		if named[img.Name] != img.Target.Digest {
			return fmt.Errorf("%w: image %s is %s in the index but %q in %s", ErrCorrupt, img.Name, img.Target.Digest, named[img.Name], ImagesPart)
		}
		if err := img.Target.Digest.Validate(); err != nil {
			return fmt.Errorf("%w: image %s: %w", ErrCorrupt, img.Name, err)
		}
		for _, b := range img.Blobs {
			if b.Digest.Algorithm() != digest.SHA256 {
				return fmt.Errorf("%w: image %s: blob %s: only sha256 is supported", ErrCorrupt, img.Name, b.Digest)
			}
			if hasBlob(staged, b) || hasBlob(mirror, b) {
				continue
			}
			msg := "the bundle does not carry it and the mirror lacks it"
			if x.Since != nil {
				msg += " (import the bundle this one was made after first)"
			}
			return fmt.Errorf("image %s: blob %s: %s", img.Name, b.Digest, msg)
		}
	}
	return nil
}

func hasBlob(layout string, d ocispec.Descriptor) bool {
	fi, err := os.Stat(blobPath(layout, d.Digest))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size
}

// checkImagesDir refuses a DIR/images that holds files but is not an OCI
// image layout: a first import renames its staged layout into place, and
// must not replace someone's directory to do it.
func checkImagesDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile)); err == nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	return fmt.Errorf("%s holds %d entries but is not an OCI image layout (no %s): refusing to replace it; move it away or import into another --dir", dir, len(entries), ocispec.ImageLayoutFile)
}

// commitImages moves the staged blobs into the mirror's layout and names
// the bundle's images in its index.json; a mirror without a layout gets the
// staged one renamed into place. It returns the blobs and bytes added.
func commitImages(x *Index, staged, mirror string) (int, int64, error) {
	blobs, err := os.ReadDir(filepath.Join(staged, "blobs", "sha256"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, err
	}
	var added int
	var bytes int64
	for _, b := range blobs {
		if fi, err := b.Info(); err == nil {
			if _, err := os.Stat(filepath.Join(mirror, "blobs", "sha256", b.Name())); err != nil {
				added++
				bytes += fi.Size()
			}
		}
	}
	if len(x.Images) == 0 && added == 0 {
		return 0, 0, nil
	}
	if _, err := os.Stat(filepath.Join(mirror, ocispec.ImageLayoutFile)); errors.Is(err, os.ErrNotExist) {
		// A first import: complete the staged layout and rename it.
		if err := os.MkdirAll(filepath.Join(staged, "blobs", "sha256"), 0o755); err != nil {
			return 0, 0, err
		}
		if err := atomicfile.WriteFile(filepath.Join(staged, ocispec.ImageLayoutFile), layoutFile, 0o644); err != nil {
			return 0, 0, err
		}
		idx := mergeIndex(&ocispec.Index{}, x.Images)
		if err := writeJSONAtomic(filepath.Join(staged, "index.json"), idx); err != nil {
			return 0, 0, err
		}
		if err := os.RemoveAll(mirror); err != nil { // an empty leftover at most
			return 0, 0, err
		}
		if err := os.Rename(staged, mirror); err != nil {
			return 0, 0, err
		}
		return added, bytes, atomicfile.SyncDir(filepath.Dir(mirror))
	}
	dst := filepath.Join(mirror, "blobs", "sha256")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, 0, err
	}
	for _, b := range blobs {
		to := filepath.Join(dst, b.Name())
		if _, err := os.Stat(to); err == nil {
			continue
		}
		if err := os.Rename(filepath.Join(staged, "blobs", "sha256", b.Name()), to); err != nil {
			return 0, 0, err
		}
	}
	if err := atomicfile.SyncDir(dst); err != nil {
		return 0, 0, err
	}
	old, err := readLayoutIndex(mirror)
	if err != nil {
		return 0, 0, err
	}
	idx := mergeIndex(old, x.Images)
	if err := writeJSONAtomic(filepath.Join(mirror, "index.json"), idx); err != nil {
		return 0, 0, err
	}
	return added, bytes, nil
}

// lockDir takes an exclusive lock on the directory itself (flock on its
// descriptor: no lock file is left behind), failing with ErrBusy when
// another import holds it.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// removeStale removes staging directories that an interrupted import left
// (the caller holds the lock, so no import is using them).
func removeStale(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), stagingPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove stale %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// progressReader counts bytes read and reports every 1 MiB.
type progressReader struct {
	r      io.Reader
	n      int64
	last   int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n-p.last >= 1<<20 {
		p.last = p.n
		p.report(p.n)
	}
	return n, err
}
