package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/kelpie-dev/kelpie/internal/testimage"
)

// archiveBlobs lists the blob entries of an OCI archive.
func archiveBlobs(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(h.Name, "blobs/") {
			out = append(out, h.Name)
		}
	}
}

func TestExportImagesFromContainerd(t *testing.T) {
	testimage.NeedBusybox(t)
	c := newTestClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	archive := filepath.Join(t.TempDir(), "std.tar")
	if err := testimage.BuildArchive(archive, testimage.Standard()...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportArchive(ctx, archive); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	imgs, err := c.ExportImages(ctx, &buf, []string{"nginx:1.7.9", "busybox:1.36", "nginx:1.7.9"}, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Ref != testimage.NginxRef || imgs[0].Source != SourceContainerd || len(imgs[0].Blobs) != 3 {
		t.Fatalf("exported %+v", imgs)
	}
	want, _, _ := testimage.Manifest(testimage.Nginx())
	if imgs[0].Target.Digest != want.Digest {
		t.Fatalf("nginx target %s, want %s", imgs[0].Target.Digest, want.Digest)
	}
	if n := len(archiveBlobs(t, buf.Bytes())); n != 6 {
		t.Fatalf("archive holds %d blobs, want 6", n)
	}

	// The archive imports into another namespace as it is.
	file := filepath.Join(t.TempDir(), "out.tar")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c2 := newTestClient(t)
	names, err := c2.ImportArchive(ctx, file)
	if err != nil {
		t.Fatalf("import the exported archive: %v", err)
	}
	if len(names) != 2 {
		t.Fatalf("imported %v", names)
	}

	// Skipped blobs are listed but not written; the same from an image dir.
	skip := map[digest.Digest]bool{}
	for _, b := range imgs[1].Blobs { // busybox
		skip[b.Digest] = true
	}
	buf.Reset()
	again, err := ExportImagesFromDirs(ctx, []string{file}, &buf, []string{"busybox:1.36", "nginx:1.7.9"}, ExportOptions{Skip: func(d digest.Digest) bool { return skip[d] }})
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[0].Source != SourceImageDir || len(again[0].Blobs) != 3 {
		t.Fatalf("exported from dir %+v", again)
	}
	got := archiveBlobs(t, buf.Bytes())
	for _, name := range got {
		for d := range skip {
			if strings.HasSuffix(name, d.Encoded()) && !nginxHas(imgs[0], d) {
				t.Fatalf("skipped blob %s written", d)
			}
		}
	}
	if len(got) >= 6 {
		t.Fatalf("archive with skipped blobs holds %d blobs", len(got))
	}

	// (A missing image is not looked for here: containerd would ask the
	// registry on the internet.)
	if _, err := ExportImagesFromDirs(ctx, []string{file}, io.Discard, []string{"nope:1"}, ExportOptions{}); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("missing image: err = %v", err)
	}
}

// nginxHas reports whether img needs blob d too (a blob shared by both
// images is written for the one that does not skip it).
func nginxHas(img ExportedImage, d digest.Digest) bool {
	for _, b := range img.Blobs {
		if b.Digest == d {
			return true
		}
	}
	return false
}
