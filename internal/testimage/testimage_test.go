package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// readTar returns the regular files, symlinks (as "-> target") and directories
// (as nil) of a tar by name.
func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s: %v", h.Name, err)
			}
			out[h.Name] = b
		case tar.TypeSymlink:
			out[h.Name] = []byte("-> " + h.Linkname)
		case tar.TypeDir:
			out[h.Name] = nil
		}
		if !h.ModTime.Equal(Epoch) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, Epoch)
		}
	}
}

// blobReader reads a blob by digest from an unpacked layout or archive and
// checks that its content has that digest.
type blobReader func(d digest.Digest) []byte

func checkImage(t *testing.T, idx ocispec.Index, blobs blobReader, spec Spec) {
	t.Helper()
	named, tag, err := normalize(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	var desc *ocispec.Descriptor
	for i, m := range idx.Manifests {
		if m.Annotations[AnnotationImageName] == named.String() {
			desc = &idx.Manifests[i]
		}
	}
	if desc == nil {
		t.Fatalf("index has no manifest named %s: %+v", named, idx.Manifests)
	}
	if got := desc.Annotations[ocispec.AnnotationRefName]; got != tag {
		t.Errorf("ref.name annotation = %q, want %q", got, tag)
	}
	mfJSON := blobs(desc.Digest)
	if int64(len(mfJSON)) != desc.Size {
		t.Errorf("manifest size %d, descriptor says %d", len(mfJSON), desc.Size)
	}
	var mf ocispec.Manifest
	if err := json.Unmarshal(mfJSON, &mf); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if mf.MediaType != ocispec.MediaTypeImageManifest || len(mf.Layers) != 1 {
		t.Fatalf("manifest: media type %q with %d layers", mf.MediaType, len(mf.Layers))
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(blobs(mf.Config.Digest), &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	if strings.Join(cfg.Config.Cmd, " ") != strings.Join(spec.Cmd, " ") {
		t.Errorf("config Cmd = %q, want %q", cfg.Config.Cmd, spec.Cmd)
	}
	if cfg.OS != "linux" || len(cfg.Config.Env) == 0 {
		t.Errorf("config: os %q, env %q", cfg.OS, cfg.Config.Env)
	}
	layer := blobs(mf.Layers[0].Digest)
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	if got := digest.FromBytes(raw); len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != got {
		t.Errorf("config diff_ids %v, layer's is %s", cfg.RootFS.DiffIDs, got)
	}
	files := readTar(t, bytes.NewReader(raw))
	bb, err := os.ReadFile(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["bin/busybox"], bb) {
		t.Errorf("bin/busybox differs from %s", DefaultBusybox)
	}
	for _, a := range []string{"sh", "httpd", "sleep", "cat"} {
		if got := string(files["bin/"+a]); got != "-> busybox" {
			t.Errorf("bin/%s = %q, want a symlink to busybox", a, got)
		}
	}
	for p, content := range spec.Files {
		if got := string(files[strings.TrimPrefix(p, "/")]); got != content {
			t.Errorf("%s = %q, want %q", p, got, content)
		}
	}
}

func TestBuildArchive(t *testing.T) {
	NeedBusybox(t)
	dir := t.TempDir()
	for _, spec := range Standard() {
		t.Run(spec.Name, func(t *testing.T) {
			p, err := Build(dir, spec)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			files := readTar(t, f)
			var layout ocispec.ImageLayout
			if err := json.Unmarshal(files[ocispec.ImageLayoutFile], &layout); err != nil || layout.Version != ocispec.ImageLayoutVersion {
				t.Fatalf("oci-layout = %q (%v)", files[ocispec.ImageLayoutFile], err)
			}
			var idx ocispec.Index
			if err := json.Unmarshal(files["index.json"], &idx); err != nil {
				t.Fatalf("index.json: %v", err)
			}
			if len(idx.Manifests) != 1 {
				t.Fatalf("index lists %d manifests, want 1", len(idx.Manifests))
			}
			for name, data := range files {
				if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && hex != "" {
					if got := digest.FromBytes(data).Encoded(); got != hex {
						t.Errorf("blob %s has digest %s", name, got)
					}
				}
			}
			checkImage(t, idx, func(d digest.Digest) []byte {
				b, ok := files["blobs/sha256/"+d.Encoded()]
				if !ok {
					t.Fatalf("archive lacks blob %s", d)
				}
				return b
			}, spec)
		})
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	NeedBusybox(t)
	spec := Nginx()
	p1, err := Build(t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	cacheMu.Lock()
	cache = map[string]*image{} // force a second build from scratch
	cacheMu.Unlock()
	p2, err := Build(t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p1) != filepath.Base(p2) {
		t.Errorf("names differ: %s vs %s", filepath.Base(p1), filepath.Base(p2))
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Errorf("two builds of the same spec differ")
	}
	// A different spec gets a different digest, hence a different file.
	other := spec
	other.Cmd = []string{"sleep", "3600"}
	p3, err := Build(filepath.Dir(p1), other)
	if err != nil {
		t.Fatal(err)
	}
	if p3 == p1 {
		t.Errorf("a changed spec reused %s", p1)
	}
}

func TestWriteLayout(t *testing.T) {
	NeedBusybox(t)
	dir := t.TempDir()
	if err := WriteLayout(dir, Standard()...); err != nil {
		t.Fatal(err)
	}
	idxJSON, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(idxJSON, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 {
		t.Fatalf("index lists %d manifests, want 2", len(idx.Manifests))
	}
	if _, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile)); err != nil {
		t.Fatal(err)
	}
	read := func(d digest.Digest) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()))
		if err != nil {
			t.Fatalf("layout lacks blob %s: %v", d, err)
		}
		if got := digest.FromBytes(b); got != d {
			t.Fatalf("blob %s has digest %s", d, got)
		}
		return b
	}
	for _, spec := range Standard() {
		checkImage(t, idx, read, spec)
	}
}

func TestBuildDocker(t *testing.T) {
	NeedBusybox(t)
	p, err := BuildDocker(t.TempDir(), Nginx())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := readTar(t, f)
	var mfs []dockerManifest
	if err := json.Unmarshal(files["manifest.json"], &mfs); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(mfs) != 1 || len(mfs[0].RepoTags) != 1 || mfs[0].RepoTags[0] != "nginx:1.7.9" || len(mfs[0].Layers) != 1 {
		t.Fatalf("manifest.json = %+v", mfs)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(files[mfs[0].Config], &cfg); err != nil {
		t.Fatalf("config %s: %v", mfs[0].Config, err)
	}
	layer, ok := files[mfs[0].Layers[0]]
	if !ok {
		t.Fatalf("no layer %s", mfs[0].Layers[0])
	}
	if got := digest.FromBytes(layer); cfg.RootFS.DiffIDs[0] != got {
		t.Errorf("config diff_id %s, layer.tar's is %s", cfg.RootFS.DiffIDs[0], got)
	}
}

func TestSpecErrors(t *testing.T) {
	NeedBusybox(t)
	for name, spec := range map[string]Spec{
		"bad name":      {Name: "UPPER/Case:1"},
		"digest only":   {Name: "busybox@sha256:" + strings.Repeat("a", 64)},
		"relative file": {Name: "x:1", Files: map[string]string{"www/index.html": "x"}},
		"no busybox":    {Name: "x:1", Busybox: "/nonexistent/busybox"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Build(t.TempDir(), spec); err == nil {
				t.Errorf("Build(%+v) succeeded", spec)
			}
		})
	}
}

func TestPush(t *testing.T) {
	NeedBusybox(t)
	reg := testenv.Registry(t)
	spec := Nginx()
	if err := Push(context.Background(), reg, spec); err != nil {
		t.Fatal(err)
	}
	desc, _, err := Manifest(spec)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodHead, reg+"/v2/library/nginx/manifests/1.7.9", nil)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD manifest: %s", resp.Status)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != desc.Digest.String() {
		t.Errorf("registry has digest %s, want %s", got, desc.Digest)
	}
	// Pushing again is a no-op that succeeds.
	if err := Push(context.Background(), reg, spec); err != nil {
		t.Fatal(err)
	}
}
