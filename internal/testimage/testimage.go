// Package testimage builds the container images kelpie's tests run, by itself
// and offline: a single layer holding a static busybox (the Debian package
// busybox-static) with symlinks for its applets, plus any files a test wants,
// written as an OCI image archive, an OCI image layout directory, a Docker
// archive, or pushed to a registry.
//
// The output is deterministic (fixed modification times, sorted entries,
// reproducible gzip), so an image's digest only changes when its Spec or the
// busybox binary does. Built images are cached in memory by their inputs, and
// archive files are named by manifest digest and never rewritten.
//
// It never reaches a registry on the internet: the only network it touches is
// the registry URL a test hands to Push.
package testimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
)

// Names of the standard test images. nginx:1.7.9 is the image of the seed
// example (examples/seed), so that example runs verbatim against test images.
const (
	BusyboxRef = "docker.io/library/busybox:1.36"
	NginxRef   = "docker.io/library/nginx:1.7.9"
)

// AnnotationImageName is the index annotation containerd's Import names
// images from (images.AnnotationImageName); it must hold the full reference.
const AnnotationImageName = "io.containerd.image.name"

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// DefaultEnv is the environment of an image whose Spec sets none.
var DefaultEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// DefaultApplets are the busybox applets linked into /bin when a Spec lists
// none; applets the busybox binary lacks are left out.
var DefaultApplets = []string{
	"awk", "cat", "chmod", "cp", "date", "df", "du", "echo", "env", "false", "find",
	"grep", "head", "hostname", "httpd", "id", "ip", "kill", "ln", "ls", "mkdir",
	"mount", "mv", "nc", "nslookup", "printf", "ps", "pwd", "readlink", "rm", "sed",
	"seq", "sh", "sleep", "sort", "stat", "tail", "tee", "test", "timeout", "touch",
	"tr", "true", "uname", "wc", "wget", "xargs", "yes",
}

// Spec describes one test image.
type Spec struct {
	// Name is the full reference the image is tagged with, e.g.
	// "docker.io/library/nginx:1.7.9". A familiar name ("nginx:1.7.9") is
	// normalized the way Docker does.
	Name string
	// Entrypoint, Cmd, Env, WorkingDir, User and Labels go to the image config
	// as they are; Env defaults to DefaultEnv.
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
	Labels     map[string]string
	// ExposedPorts lists ports as "80/tcp".
	ExposedPorts []string
	// Files are extra regular files (mode 0644) by absolute path in the image;
	// their parent directories are created.
	Files map[string]string
	// Applets are the busybox applets linked into /bin; nil means DefaultApplets.
	Applets []string
	// Busybox is the static busybox binary to put in /bin; "" means DefaultBusybox.
	Busybox string
}

// Busybox is the spec of docker.io/library/busybox:1.36, whose command is sh.
func Busybox() Spec {
	return Spec{Name: BusyboxRef, Cmd: []string{"sh"}}
}

// NginxIndex is the page the test nginx image serves at /.
const NginxIndex = `<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>kelpie test image: busybox httpd serving /www.</p>
</body>
</html>
`

// Nginx is the spec of docker.io/library/nginx:1.7.9: busybox httpd in the
// foreground serving /www (holding NginxIndex as index.html) on port 80,
// under ExitOnTerm so that, like nginx, it stops at once on SIGTERM.
func Nginx() Spec {
	return Spec{
		Name:         NginxRef,
		Cmd:          ExitOnTerm("httpd", "-f", "-p", "80", "-h", "/www"),
		ExposedPorts: []string{"80/tcp"},
		Files:        map[string]string{"/www/index.html": NginxIndex},
	}
}

// exitOnTermScript runs its arguments as a child and waits for it. On
// SIGTERM or SIGINT it passes SIGTERM on to the child, waits for it and
// exits 0. A trapped signal interrupts `wait`, so the trap runs at once.
const exitOnTermScript = `trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM INT
"$@" &
child=$!
wait "$child"`

// ExitOnTerm wraps a command so that, run as a container's PID 1, it exits
// promptly on SIGTERM, as real server images do (nginx shuts down at once
// on SIGTERM). Busybox applets run as PID 1 do not: the kernel drops
// signals PID 1 has no handler for, so busybox httpd or sleep there ignores
// SIGTERM and every stop waits for the whole grace period, then SIGKILL.
// The wrapper is a busybox sh that runs the command as its child (which,
// not being PID 1, dies of SIGTERM), passes SIGTERM on and exits 0, or
// exits with the command's status when the command ends by itself.
//
// A container whose command the manifest sets (command:) replaces the
// image's entrypoint and cmd, wrapper included: `sleep 1000` given so still
// ignores SIGTERM, as it does with real images.
func ExitOnTerm(argv ...string) []string {
	return append([]string{"sh", "-c", exitOnTermScript, argv[0]}, argv...)
}

// Standard returns the specs of the standard test images: busybox and nginx.
func Standard() []Spec {
	return []Spec{Busybox(), Nginx()}
}

// Build writes spec as an OCI image archive (a tar holding oci-layout,
// index.json and blobs/sha256/...) in dir and returns the archive's path. The
// file is named after the image and its manifest digest; an existing file of
// that name is reused as it is.
func Build(dir string, spec Spec) (string, error) {
	img, err := build(spec)
	if err != nil {
		return "", err
	}
	name := fileName(img.ref) + "-" + img.manifest.Digest.Encoded()[:12] + ".tar"
	return writeOnce(filepath.Join(dir, name), func(w io.Writer) error {
		return writeOCIArchive(w, []*image{img})
	})
}

// BuildArchive writes one OCI image archive at path holding every image of
// specs, each named in index.json.
func BuildArchive(path string, specs ...Spec) error {
	imgs, err := buildAll(specs)
	if err != nil {
		return err
	}
	_, err = writeOnce(path, func(w io.Writer) error { return writeOCIArchive(w, imgs) })
	return err
}

// BuildDocker writes spec as a Docker archive (the `docker save` format:
// manifest.json with RepoTags, the config and an uncompressed layer.tar) in dir
// and returns its path. The file is named as Build names it, with a
// "-docker.tar" suffix.
func BuildDocker(dir string, spec Spec) (string, error) {
	img, err := build(spec)
	if err != nil {
		return "", err
	}
	name := fileName(img.ref) + "-" + img.manifest.Digest.Encoded()[:12] + "-docker.tar"
	return writeOnce(filepath.Join(dir, name), func(w io.Writer) error {
		return writeDockerArchive(w, img)
	})
}

// WriteLayout writes an OCI image layout directory at dir (created if needed)
// holding the images of specs, each named in index.json. An existing
// index.json is replaced; blobs already there are kept.
func WriteLayout(dir string, specs ...Spec) error {
	imgs, err := buildAll(specs)
	if err != nil {
		return err
	}
	blobDir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	for _, b := range blobsOf(imgs) {
		p := filepath.Join(blobDir, b.digest.Encoded())
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := atomicfile.WriteFile(p, b.data, 0o644); err != nil {
			return fmt.Errorf("write layout %s: %w", dir, err)
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), layoutFile(), 0o644); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "index.json"), indexFile(imgs), 0o644); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	return nil
}

// Manifest returns the descriptor of spec's manifest as it appears in an
// index.json written by this package (with its name annotations), and the
// digest of the image's config. Tests use it to check what a runtime imported.
func Manifest(spec Spec) (ocispec.Descriptor, digest.Digest, error) {
	img, err := build(spec)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return img.manifest, img.configDigest, nil
}

func buildAll(specs []Spec) ([]*image, error) {
	if len(specs) == 0 {
		return nil, errors.New("no image specs given")
	}
	imgs := make([]*image, 0, len(specs))
	seen := map[string]bool{}
	for _, s := range specs {
		img, err := build(s)
		if err != nil {
			return nil, err
		}
		if seen[img.ref] {
			return nil, fmt.Errorf("image %s given twice", img.ref)
		}
		seen[img.ref] = true
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// normalize turns a familiar reference into the full one Docker would use.
func normalize(name string) (reference.Named, string, error) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, "", fmt.Errorf("image name %q: %w", name, err)
	}
	named = reference.TagNameOnly(named)
	tagged, ok := named.(reference.NamedTagged)
	if !ok {
		return nil, "", fmt.Errorf("image name %q: needs a tag, not only a digest", name)
	}
	return named, tagged.Tag(), nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileName(ref string) string {
	return strings.Trim(unsafeChars.ReplaceAllString(ref, "_"), "_")
}

// writeOnce writes path through a temporary file and a rename unless path
// already exists, so parallel tests never see a half-written archive.
func writeOnce(path string, write func(io.Writer) error) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := atomicfile.Write(path, 0o644, write); err != nil {
		return "", err
	}
	return path, nil
}

func layoutFile() []byte {
	b, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	return b
}

func indexFile(imgs []*image) []byte {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, img := range imgs {
		idx.Manifests = append(idx.Manifests, img.manifest)
	}
	b, _ := json.MarshalIndent(idx, "", "  ")
	return b
}

type blob struct {
	digest digest.Digest
	data   []byte
}

// blobsOf lists the distinct blobs of imgs sorted by digest.
func blobsOf(imgs []*image) []blob {
	byDigest := map[digest.Digest][]byte{}
	for _, img := range imgs {
		for d, data := range img.blobs {
			byDigest[d] = data
		}
	}
	out := make([]blob, 0, len(byDigest))
	for d, data := range byDigest {
		out = append(out, blob{d, data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].digest < out[j].digest })
	return out
}

func writeOCIArchive(w io.Writer, imgs []*image) error {
	tw := tar.NewWriter(w)
	if err := tarDir(tw, "blobs/"); err != nil {
		return err
	}
	if err := tarDir(tw, "blobs/sha256/"); err != nil {
		return err
	}
	for _, b := range blobsOf(imgs) {
		if err := tarFile(tw, "blobs/sha256/"+b.digest.Encoded(), b.data); err != nil {
			return err
		}
	}
	if err := tarFile(tw, "index.json", indexFile(imgs)); err != nil {
		return err
	}
	if err := tarFile(tw, ocispec.ImageLayoutFile, layoutFile()); err != nil {
		return err
	}
	return tw.Close()
}

// dockerManifest is one entry of a Docker archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func writeDockerArchive(w io.Writer, img *image) error {
	named, _, err := normalize(img.ref)
	if err != nil {
		return err
	}
	layerDir := img.diffID.Encoded()
	cfgName := img.configDigest.Encoded() + ".json"
	mf, _ := json.Marshal([]dockerManifest{{
		Config:   cfgName,
		RepoTags: []string{reference.FamiliarString(named)},
		Layers:   []string{layerDir + "/layer.tar"},
	}})
	tw := tar.NewWriter(w)
	if err := tarFile(tw, cfgName, img.blobs[img.configDigest]); err != nil {
		return err
	}
	if err := tarDir(tw, layerDir+"/"); err != nil {
		return err
	}
	if err := tarFile(tw, layerDir+"/layer.tar", img.rawLayer); err != nil {
		return err
	}
	if err := tarFile(tw, "manifest.json", mf); err != nil {
		return err
	}
	return tw.Close()
}

func tarDir(tw *tar.Writer, name string) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: Epoch, Format: tar.FormatPAX})
}

func tarFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: path.Clean(name), Mode: 0o644, Size: int64(len(data)), ModTime: Epoch, Format: tar.FormatPAX,
	}); err != nil {
		return err
	}
	_, err := io.Copy(tw, bytes.NewReader(data))
	return err
}
