package mirror

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// tinyImage is the reference of tinyLayout's image.
const tinyImage = "docker.io/library/tiny:1"

// tinyLayout writes an OCI image layout holding tinyImage: one layer of one
// small file. Bundles of it are a few kilobytes, small enough to fuzz.
func tinyLayout(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	blob := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		p := blobPath(dir, d)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var raw, gz bytes.Buffer
	tw := tar.NewWriter(&raw)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "hello.txt", Mode: 0o644, Size: 6})
	_, _ = tw.Write([]byte("hello\n"))
	_ = tw.Close()
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	layer := blob(gz.Bytes())
	layer.MediaType = ocispec.MediaTypeImageLayerGzip
	config := blob(mustJSON(ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw.Bytes())}},
	}))
	config.MediaType = ocispec.MediaTypeImageConfig
	manifest := blob(mustJSON(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: config, Layers: []ocispec.Descriptor{layer}}))
	manifest.MediaType = ocispec.MediaTypeImageManifest
	manifest.Annotations = map[string]string{annotationImageName: tinyImage}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{manifest}}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(idx), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), layoutFile, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// FuzzImport feeds altered bundles (index, tar framing, git pack, image
// archive) to Import, with and without --verify-keys. An import must never
// panic, and one that fails must leave the mirror as it was. The seeds are
// small valid bundles: a full one, an incremental one, one signed with a
// lock; crashers are kept under testdata/fuzz/FuzzImport.
func FuzzImport(f *testing.F) {
	key, keys := signingKey(f)
	images := tinyLayout(f)
	ctx := context.Background()
	site := testenv.NewGitRepo(f)
	site.Write("deploy/web.yaml", deployment("web", "tiny:1", 1))
	if _, err := WriteLock(ctx, LockConfig{Dir: site.Dir, Path: "deploy", Images: DirExporter{images}}); err != nil {
		f.Fatal(err)
	}
	commitSigned(site, "web", key)
	create := func(since string) string {
		out := filepath.Join(f.TempDir(), "seed.kbundle")
		if _, _, err := Create(ctx, CreateConfig{Repo: site.Dir, Out: out, Path: "deploy", Since: since, Images: DirExporter{images}}); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
		return out
	}
	full := create("")
	site.Write("deploy/web.yaml", deployment("web", "tiny:1", 2))
	commitSigned(site, "two", key)
	create(full)
	site.Write("deploy/web.yaml", deployment("web", "tiny:1", 3))
	site.Commit("unsigned")
	create(full)

	// The mirror every input is imported into: the first bundle's state.
	dir := filepath.Join(f.TempDir(), "mirror")
	if _, err := Import(ctx, ImportConfig{File: full, Dir: dir}); err != nil {
		f.Fatal(err)
	}
	before := testenv.TreeDigest(f, dir)

	f.Fuzz(func(t *testing.T, data []byte, verify bool) {
		file := filepath.Join(t.TempDir(), "in.kbundle")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := ImportConfig{File: file, Dir: dir}
		if verify {
			cfg.VerifyKeysFile = keys
		}
		_, err := Import(ctx, cfg)
		after := testenv.TreeDigest(t, dir)
		switch {
		case err != nil && errors.Is(err, ErrBusy):
			t.Fatalf("import: %v", err)
		case err != nil && after != before:
			t.Fatalf("a refused import changed the mirror: %v", err)
		case err == nil:
			before = after // a valid bundle moved the mirror on
		}
	})
}
