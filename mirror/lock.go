package mirror

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/source"
)

// The image lock: which image each reference of the manifests names.
//
// A signed commit vouches for the manifests, and so for the names of the
// images they run ("nginx:1.7.9"), but not for what those names resolve
// to: a bundle's index maps each name to a digest, and the index is not
// signed. To carry that mapping under the same signature, a site commits
// LockFile next to its manifests: one line per image, its normalized
// reference and the digest of its manifest (or index). An import with
// --verify-keys takes an image only if its digest is pinned by the lock
// file of a signed commit the bundle carries, or named by the reference
// itself (nginx@sha256:…). `kelpie mirror lock` writes the file;
// `kelpie mirror create` checks that the images it exports match the lock
// of each ref that has one.

// LockFile is the image lock's path from the root of the site repository.
const LockFile = ".kelpie/images.lock"

// maxLockSize bounds a lock file; one line per image is kilobytes.
const maxLockSize = 1 << 20

// lockHeader starts a lock file that WriteLock writes.
const lockHeader = "# kelpie image lock: the digest of each image the manifests use.\n" +
	"# Written by `kelpie mirror lock`; commit it (signed) with the manifests.\n"

// ErrImageNotSigned is wrapped by the refusal, in an import with
// --verify-keys, of an image whose digest no signed statement covers.
// errors.Is matches source.ErrUntrusted with it too.
var ErrImageNotSigned error = imageNotSigned{}

type imageNotSigned struct{}

func (imageNotSigned) Error() string        { return "image digest not covered by a signature" }
func (imageNotSigned) Is(target error) bool { return target == source.ErrUntrusted }

// ImageLock maps normalized image references to the digest of the image's
// manifest or index.
type ImageLock map[string]digest.Digest

// ParseLock parses a lock file: one "REFERENCE DIGEST" a line, blank lines
// and lines starting with # ignored. References are normalized; a
// reference listed twice, a bad reference or a digest that is not a valid
// sha256 digest is an error naming the line.
func ParseLock(b []byte) (ImageLock, error) {
	if len(b) > maxLockSize {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", LockFile, len(b), maxLockSize)
	}
	lock := ImageLock{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxLockSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want REFERENCE DIGEST, got %d fields", LockFile, n, len(fields))
		}
		ref, err := image.NormalizeRef(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", LockFile, n, err)
		}
		d := digest.Digest(fields[1])
		if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("%s:%d: %q is not a sha256 digest", LockFile, n, fields[1])
		}
		if old, ok := lock[ref]; ok {
			return nil, fmt.Errorf("%s:%d: %s listed twice (also as %s)", LockFile, n, ref, old)
		}
		lock[ref] = d
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", LockFile, err)
	}
	return lock, nil
}

// Bytes renders the lock as a lock file, sorted by reference.
func (l ImageLock) Bytes() []byte {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString(lockHeader)
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", n, l[n])
	}
	return b.Bytes()
}

// LockConfig configures WriteLock.
type LockConfig struct {
	// Dir is the work tree of the site repository (default ".").
	Dir string
	// Path is the manifests' directory in it (default ".").
	Path string
	// Images is where the images are looked up.
	Images ImageExporter
}

// WriteLock writes Dir/LockFile: the digest, as cfg.Images has it, of
// every image the manifests under Dir/Path use. It replaces the file
// whole, and returns what it wrote.
func WriteLock(ctx context.Context, cfg LockConfig) (ImageLock, error) {
	if cfg.Images == nil {
		return nil, errors.New("write image lock: Images: an image source is needed")
	}
	if cfg.Dir == "" {
		cfg.Dir = "."
	}
	if cfg.Path == "" {
		cfg.Path = "."
	}
	dir := path.Clean(strings.TrimPrefix(filepath.ToSlash(cfg.Path), "/"))
	imgs, err := manifestImages(os.DirFS(cfg.Dir), dir)
	if err != nil {
		return nil, fmt.Errorf("write image lock: manifests under %s: %w", filepath.Join(cfg.Dir, dir), err)
	}
	lock := ImageLock{}
	if len(imgs) > 0 {
		// List the images without writing any blob.
		exported, err := cfg.Images.ExportImages(ctx, io.Discard, imgs, image.ExportOptions{Skip: func(digest.Digest) bool { return true }})
		if err != nil {
			return nil, fmt.Errorf("write image lock: %w", err)
		}
		for _, e := range exported {
			lock[e.Ref] = e.Target.Digest
		}
	}
	file := filepath.Join(cfg.Dir, filepath.FromSlash(LockFile))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, fmt.Errorf("write image lock: %w", err)
	}
	if err := atomicfile.WriteFile(file, lock.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("write image lock: %w", err)
	}
	return lock, nil
}

// readLock reads the lock file of a commit's tree; nil when it has none.
func readLock(fsys fs.FS) (ImageLock, error) {
	b, err := fs.ReadFile(fsys, LockFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseLock(b)
}

// checkLock checks that the images exported for a ref match the lock of
// its commit: create refuses to write a bundle that an import with
// --verify-keys would refuse for its images.
func checkLock(ref, short string, lock ImageLock, used []string, exported map[string]digest.Digest) error {
	for _, name := range used {
		if _, ok := refDigest(name); ok {
			continue // the reference names its digest
		}
		want, ok := lock[name]
		switch {
		case !ok:
			return fmt.Errorf("image %s is not in %s at %s (%s): run `kelpie mirror lock` and commit the file", name, LockFile, ref, short)
		case exported[name] != want:
			return fmt.Errorf("image %s is %s in the image source, but %s at %s (%s) pins %s: bring that image, or update the lock (`kelpie mirror lock`) and commit it",
				name, exported[name], LockFile, ref, short, want)
		}
	}
	return nil
}

// refDigest returns the digest a reference names (NAME@sha256:…).
func refDigest(ref string) (digest.Digest, bool) {
	i := strings.LastIndex(ref, "@")
	if i < 0 {
		return "", false
	}
	d := digest.Digest(ref[i+1:])
	return d, d.Validate() == nil
}

// checkImagesSigned is the image half of an import with --verify-keys,
// after the refs' commits have been verified: every image the bundle names
// must have its digest covered by a signed statement, that is pinned by
// the LockFile of a signed commit the bundle carries, or named by its
// reference. Refusals wrap ErrImageNotSigned.
func checkImagesSigned(x *Index, st *source.StagedBundle) error {
	pins := map[string]map[digest.Digest]string{} // name → digest → the ref whose lock pins it
	locked := []string{}                          // refs with a lock
	for _, r := range x.Refs {
		b, err := st.ReadFile(r.Name, LockFile, maxLockSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrImageNotSigned, err)
		}
		lock, err := ParseLock(b)
		if err != nil {
			return fmt.Errorf("%w: at %s: %w", ErrImageNotSigned, r.Name, err)
		}
		locked = append(locked, r.Name)
		for name, d := range lock {
			if pins[name] == nil {
				pins[name] = map[digest.Digest]string{}
			}
			pins[name][d] = r.Name
		}
	}
	for _, img := range x.Images {
		d := img.Target.Digest
		if named, ok := refDigest(img.Name); ok {
			if named == d {
				continue
			}
			return fmt.Errorf("%w: image %s is %s in the bundle, not the digest its reference names", ErrImageNotSigned, img.Name, d)
		}
		if _, ok := pins[img.Name][d]; ok {
			continue
		}
		switch {
		case len(locked) == 0:
			return fmt.Errorf("%w: image %s (%s): no signed commit of the bundle has %s "+
				"(run `kelpie mirror lock` in the repository and commit the file, signed; or name the image by digest)",
				ErrImageNotSigned, img.Name, d, LockFile)
		case len(pins[img.Name]) > 0:
			var other digest.Digest
			var ref string
			for o, r := range pins[img.Name] {
				other, ref = o, r
			}
			return fmt.Errorf("%w: image %s is %s in the bundle, but the signed %s of %s pins %s (the bundle was altered, or made from other images)",
				ErrImageNotSigned, img.Name, d, LockFile, ref, other)
		default:
			return fmt.Errorf("%w: image %s (%s) is not in the signed %s of %s",
				ErrImageNotSigned, img.Name, d, LockFile, strings.Join(locked, ", "))
		}
	}
	return nil
}
