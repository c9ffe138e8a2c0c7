package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// assertUnpacked checks that containerd holds ref unpacked in the client's
// snapshotter.
func assertUnpacked(t *testing.T, c *Client, ref string) {
	t.Helper()
	ctx := c.WithNamespace(context.Background())
	ci, err := c.cd.GetImage(ctx, ref)
	if err != nil {
		t.Fatalf("containerd lacks %s: %v", ref, err)
	}
	ok, err := ci.IsUnpacked(ctx, c.Snapshotter())
	if err != nil || !ok {
		t.Errorf("%s unpacked in %s = %v, %v; want true", ref, c.Snapshotter(), ok, err)
	}
}

// imageNames lists the images of the client's namespace.
func imageNames(t *testing.T, c *Client) []string {
	t.Helper()
	imgs, err := c.cd.ImageService().List(c.WithNamespace(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	sort.Strings(names)
	return names
}

// rewriteIndex edits the index.json of an OCI layout directory.
func rewriteIndex(t *testing.T, dir string, edit func(*ocispec.Index)) {
	t.Helper()
	p := filepath.Join(dir, "index.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	edit(&idx)
	if b, err = json.Marshal(idx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImportArchive(t *testing.T) {
	testimage.NeedBusybox(t)
	var log progressLog
	c := newTestClient(t, WithProgress(log.add, time.Millisecond))
	archive, err := testimage.Build(t.TempDir(), testimage.Busybox())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := c.ImportArchive(ctx, archive)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, []string{testimage.BusyboxRef}) {
		t.Fatalf("imported %q, want [%s]", names, testimage.BusyboxRef)
	}
	assertUnpacked(t, c, testimage.BusyboxRef)
	img, err := c.GetImage(ctx, "busybox:1.36")
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := testimage.Manifest(testimage.Busybox())
	if img.Digest != want.Digest.String() {
		t.Errorf("digest %s, want %s", img.Digest, want.Digest)
	}

	ps := log.all()
	if len(ps) == 0 || ps[0].Stage != StageImporting || ps[0].Source != "archive "+archive {
		t.Errorf("first progress report = %+v, want importing from the archive", ps)
	}
	if last := ps[len(ps)-1]; last.Stage != StageDone || last.Ref != testimage.BusyboxRef {
		t.Errorf("last progress report = %+v, want done", last)
	}

	// Importing again is harmless.
	if _, err := c.ImportArchive(ctx, archive); err != nil {
		t.Errorf("second import: %v", err)
	}
}

func TestImportArchiveDocker(t *testing.T) {
	testimage.NeedBusybox(t)
	c := newTestClient(t)
	archive, err := testimage.BuildDocker(t.TempDir(), testimage.Nginx())
	if err != nil {
		t.Fatal(err)
	}
	names, err := c.ImportArchive(context.Background(), archive)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, []string{testimage.NginxRef}) {
		t.Fatalf("imported %q, want [%s]", names, testimage.NginxRef)
	}
	assertUnpacked(t, c, testimage.NginxRef)
}

func TestImportArchiveGzipAndMany(t *testing.T) {
	testimage.NeedBusybox(t)
	c := newTestClient(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "both.tar")
	if err := testimage.BuildArchive(plain, testimage.Standard()...); err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(dir, "both.tar.gz")
	gzipFile(t, plain, gz)
	names, err := c.ImportArchive(context.Background(), gz)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{testimage.BusyboxRef, testimage.NginxRef}; !reflect.DeepEqual(names, want) {
		t.Fatalf("imported %q, want %q", names, want)
	}
	for _, n := range names {
		assertUnpacked(t, c, n)
	}
}

func TestImportArchiveLayoutDirNormalizesNames(t *testing.T) {
	testimage.NeedBusybox(t)
	c := newTestClient(t)
	dir := t.TempDir()
	if err := testimage.WriteLayout(dir, testimage.Busybox()); err != nil {
		t.Fatal(err)
	}
	// A familiar name, as some tools write it.
	rewriteIndex(t, dir, func(idx *ocispec.Index) {
		idx.Manifests[0].Annotations = map[string]string{ocispec.AnnotationRefName: "busybox:1.36"}
	})
	names, err := c.ImportArchive(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, []string{testimage.BusyboxRef}) {
		t.Fatalf("imported %q, want [%s]", names, testimage.BusyboxRef)
	}
	if got := imageNames(t, c); !reflect.DeepEqual(got, []string{testimage.BusyboxRef}) {
		t.Errorf("containerd holds %q, want only the normalized name", got)
	}
	assertUnpacked(t, c, testimage.BusyboxRef)
}

func TestImportArchiveWithoutNames(t *testing.T) {
	testimage.NeedBusybox(t)
	c := newTestClient(t)
	dir := t.TempDir()
	if err := testimage.WriteLayout(dir, testimage.Busybox()); err != nil {
		t.Fatal(err)
	}
	rewriteIndex(t, dir, func(idx *ocispec.Index) {
		idx.Manifests[0].Annotations = map[string]string{ocispec.AnnotationRefName: "1.36"} // a bare tag names nothing
	})
	_, err := c.ImportArchive(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "names no image") || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("error = %v, want one saying the archive names no image", err)
	}
}

func TestImportArchiveErrors(t *testing.T) {
	c := &Client{}
	if _, err := c.ImportArchive(context.Background(), "/nonexistent/x.tar"); err == nil || !strings.Contains(err.Error(), "/nonexistent/x.tar") {
		t.Errorf("missing file: error = %v", err)
	}
	if _, err := c.ImportArchive(context.Background(), t.TempDir()); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("plain directory: error = %v, want errdefs.ErrInvalidArgument", err)
	}
}

func gzipFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// imageDir lays out an image dir as an air-gapped site would: a layout
// directory, an OCI archive, a Docker archive and an unrelated file.
func imageDir(t *testing.T) (dir string, docker testimage.Spec) {
	t.Helper()
	dir = t.TempDir()
	if err := testimage.WriteLayout(filepath.Join(dir, "a-layout"), testimage.Busybox()); err != nil {
		t.Fatal(err)
	}
	if _, err := testimage.Build(dir, testimage.Nginx()); err != nil {
		t.Fatal(err)
	}
	docker = testimage.Spec{Name: "docker.io/kelpie/docker-only:1", Cmd: []string{"sleep", "3600"}}
	if _, err := testimage.BuildDocker(dir, docker); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, docker
}

func TestScanImageDir(t *testing.T) {
	testimage.NeedBusybox(t)
	dir, _ := imageDir(t)
	c := &Client{opts: options{imageDirs: []string{dir}}}
	var problems []string
	srcs := c.sources(&problems)
	if len(problems) != 0 || len(srcs) != 3 {
		t.Fatalf("sources = %q, problems %q; want 3 sources", srcs, problems)
	}
	got := map[string]string{}
	for _, s := range srcs {
		imgs, err := c.scan(s)
		if err != nil {
			t.Fatalf("scan %s: %v", s, err)
		}
		for _, di := range imgs {
			for _, n := range di.names {
				got[n] = di.format
			}
		}
	}
	want := map[string]string{
		testimage.BusyboxRef:             formatLayout,
		testimage.NginxRef:               formatOCITar,
		"docker.io/kelpie/docker-only:1": formatDocker,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scanned %v, want %v", got, want)
	}
}

func TestOCISubsetHoldsOnlyOneImage(t *testing.T) {
	testimage.NeedBusybox(t)
	dir := t.TempDir()
	if err := testimage.WriteLayout(dir, testimage.Standard()...); err != nil {
		t.Fatal(err)
	}
	imgs, err := scanSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	var nginx dirImage
	for _, di := range imgs {
		if di.matches(testimage.NginxRef) {
			nginx = di
		}
	}
	bs, err := openBlobSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	write, total, err := ociSubset(bs, nginx.desc, testimage.NginxRef)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var blobs int
	var blobBytes int64
	var idx ocispec.Index
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(h.Name, "blobs/sha256/") {
			blobs++
			blobBytes += h.Size
		}
		if h.Name == "index.json" {
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if blobs != 3 || blobBytes != total {
		t.Errorf("subset has %d blobs of %d bytes, want 3 of %d", blobs, blobBytes, total)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != nginx.desc.Digest ||
		idx.Manifests[0].Annotations[annotationImageName] != testimage.NginxRef {
		t.Errorf("subset index = %+v", idx)
	}
}

func TestEnsureImageFromLayoutDir(t *testing.T) {
	testimage.NeedBusybox(t)
	dir := t.TempDir()
	if err := testimage.WriteLayout(dir, testimage.Standard()...); err != nil {
		t.Fatal(err)
	}
	var log progressLog
	c := newTestClient(t, WithImageDirs(dir), WithProgress(log.add, time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	img, err := c.EnsureImage(ctx, "nginx:1.7.9", PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != testimage.NginxRef || img.Source != SourceImageDir || img.From != dir {
		t.Errorf("image = %+v, want %s from image dir %s", img, testimage.NginxRef, dir)
	}
	assertUnpacked(t, c, testimage.NginxRef)
	// Only the image asked for was imported.
	if got := imageNames(t, c); !reflect.DeepEqual(got, []string{testimage.NginxRef}) {
		t.Errorf("containerd holds %q, want only %s", got, testimage.NginxRef)
	}
	ps := log.all()
	if len(ps) == 0 || ps[len(ps)-1].Stage != StageDone || !strings.HasPrefix(ps[0].Source, "image dir "+dir) {
		t.Errorf("progress = %+v", ps)
	}

	again, err := c.EnsureImage(ctx, testimage.NginxRef, PullIfNotPresent)
	if err != nil || again.Source != SourceContainerd {
		t.Errorf("second EnsureImage = %+v, %v; want it from containerd", again, err)
	}
	// By digest, from the same layout.
	bb, _, _ := testimage.Manifest(testimage.Busybox())
	byDigest, err := c.EnsureImage(ctx, "busybox@"+bb.Digest.String(), PullNever)
	if err != nil {
		t.Fatal(err)
	}
	if byDigest.Source != SourceImageDir || byDigest.Digest != bb.Digest.String() {
		t.Errorf("by digest = %+v", byDigest)
	}
}

func TestEnsureImageFromImageDirOfArchives(t *testing.T) {
	testimage.NeedBusybox(t)
	dir, docker := imageDir(t)
	c := newTestClient(t, WithImageDirs(dir))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct{ ref, wantFrom string }{
		{"busybox:1.36", filepath.Join(dir, "a-layout")},
		{"nginx:1.7.9", filepath.Join(dir, "docker.io_library_nginx_1.7.9-")},
		{docker.Name, filepath.Join(dir, "docker.io_kelpie_docker-only_1-")},
	} {
		img, err := c.EnsureImage(ctx, tc.ref, PullNever)
		if err != nil {
			t.Errorf("EnsureImage(%s): %v", tc.ref, err)
			continue
		}
		if img.Source != SourceImageDir || !strings.HasPrefix(img.From, tc.wantFrom) {
			t.Errorf("EnsureImage(%s) = %+v, want it from %s*", tc.ref, img, tc.wantFrom)
		}
		assertUnpacked(t, c, img.Ref)
	}
}

func TestEnsureImageConcurrentCallsFetchOnce(t *testing.T) {
	testimage.NeedBusybox(t)
	dir := t.TempDir()
	if err := testimage.WriteLayout(dir, testimage.Busybox()); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, WithImageDirs(dir))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 4
	results := make(chan ImageSource, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			img, err := c.EnsureImage(ctx, testimage.BusyboxRef, PullNever)
			errs <- err
			results <- img.Source
		}()
	}
	imported := 0
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if <-results == SourceImageDir {
			imported++
		}
	}
	if imported != 1 {
		t.Errorf("%d of %d concurrent calls imported the image, want 1", imported, n)
	}
}

func TestEnsureImageBrokenArchiveIsReported(t *testing.T) {
	testimage.NeedBusybox(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.tar"), []byte("this is not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, WithImageDirs(dir))
	_, err := c.EnsureImage(context.Background(), "busybox:1.36", PullNever)
	if err == nil || !strings.Contains(err.Error(), "skipped "+filepath.Join(dir, "broken.tar")) {
		t.Errorf("error = %v, want it to name the broken archive", err)
	}
}
