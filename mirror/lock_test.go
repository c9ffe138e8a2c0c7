package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/source"
)

// repoint alters a bundle as someone in transit could: the image named
// from is made to be the image named to (its target and blobs, in the
// index and in the image archive's index.json), every checksum of the
// index recomputed. The git part, and so every signed commit, is kept.
func repoint(t *testing.T, file, from, to string) string {
	t.Helper()
	x, parts := bundleParts(t, file)
	var target Image
	for _, img := range x.Images {
		if img.Name == to {
			target = img
		}
	}
	for i, img := range x.Images {
		if img.Name == from {
			x.Images[i].Target, x.Images[i].Blobs = target.Target, target.Blobs
		}
	}
	files := tarFiles(t, parts[ImagesPart])
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	for i, d := range idx.Manifests {
		if d.Annotations[annotationImageName] == from {
			ann := d.Annotations
			idx.Manifests[i] = target.Target
			idx.Manifests[i].Annotations = ann
		}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	files["index.json"] = b
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	parts[ImagesPart] = tarOf(t, names, files)
	return writeBundleFile(t, x, parts)
}

// TestVerifyKeysCoversImages: the audit's reproduction. A bundle of a
// signed commit, its index altered to point nginx at another image, was
// imported with --verify-keys: the signature covered the commit only. Now
// an image's digest must be pinned by the signed commit's LockFile.
func TestVerifyKeysCoversImages(t *testing.T) {
	key, keys := signingKey(t)
	site := testenv.NewGitRepo(t)
	site.Write("deploy/web.yaml", deployment("web", "nginx:1.7.9", 2))
	site.Write("deploy/tools.yaml", deployment("tools", testimage.BusyboxRef, 1))
	commitSigned(site, "no lock", key)
	ctx := context.Background()

	dir := filepath.Join(t.TempDir(), "mirror")
	bundle := func(name string) string {
		out := filepath.Join(t.TempDir(), name)
		mustCreate(t, CreateConfig{Repo: site.Dir, Out: out})
		return out
	}
	// Signed commits without a lock: the images are covered by nothing.
	noLock := bundle("nolock.kbundle")
	_, err := Import(ctx, ImportConfig{File: noLock, Dir: dir, VerifyKeysFile: keys})
	if !errors.Is(err, source.ErrUntrusted) || !strings.Contains(err.Error(), LockFile) {
		t.Fatalf("signed commit without a lock: err = %v, want ErrUntrusted naming %s", err, LockFile)
	}
	t.Logf("refused: %v", err)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("refused import left the mirror directory")
	}

	// kelpie mirror lock, committed signed.
	lock, err := WriteLock(ctx, LockConfig{Dir: site.Dir, Path: "deploy", Images: DirExporter{testImageDir(t)}})
	if err != nil {
		t.Fatal(err)
	}
	nginx, _, _ := testimage.Manifest(testimage.Nginx())
	if len(lock) != 2 || lock[testimage.NginxRef] != nginx.Digest {
		t.Fatalf("lock = %v", lock)
	}
	commitSigned(site, "lock images", key)
	honest := bundle("honest.kbundle")
	forged := repoint(t, honest, testimage.NginxRef, testimage.BusyboxRef)

	// The forged bundle: every checksum holds, the commit is signed.
	_, err = Import(ctx, ImportConfig{File: forged, Dir: dir, VerifyKeysFile: keys})
	if !errors.Is(err, source.ErrUntrusted) || !strings.Contains(err.Error(), testimage.NginxRef) || !strings.Contains(err.Error(), "pins "+string(nginx.Digest)) {
		t.Fatalf("forged image: err = %v, want ErrUntrusted naming nginx and its pinned digest", err)
	}
	t.Logf("refused: %v", err)

	res := importOK(t, ImportConfig{File: honest, Dir: dir, VerifyKeysFile: keys})
	if len(res.Images) != 2 {
		t.Fatalf("import = %+v", res)
	}
	before := testenv.TreeDigest(t, dir)
	if _, err := Import(ctx, ImportConfig{File: forged, Dir: dir, VerifyKeysFile: keys}); !errors.Is(err, source.ErrUntrusted) {
		t.Fatalf("forged image into a mirror: err = %v", err)
	}
	if testenv.TreeDigest(t, dir) != before {
		t.Fatal("refused import changed the mirror")
	}

	// Without --verify-keys an import stays as it was: the forged index is
	// taken (what the audit reproduced).
	other := filepath.Join(t.TempDir(), "other")
	importOK(t, ImportConfig{File: forged, Dir: other})
	idx, err := readLayoutIndex(filepath.Join(other, ImagesDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range idx.Manifests {
		if d.Annotations[annotationImageName] == testimage.NginxRef && d.Digest == nginx.Digest {
			t.Fatal("the forged bundle was not forged")
		}
	}
}

// TestCreateChecksLock: create refuses to write a bundle whose images do
// not match the lock of a ref, rather than one an import would refuse.
func TestCreateChecksLock(t *testing.T) {
	site, _ := newSite(t)
	lock := ImageLock{testimage.NginxRef: digest.Digest("sha256:" + strings.Repeat("a", 64))}
	site.Write(LockFile, string(lock.Bytes()))
	site.Commit("stale lock")
	out := filepath.Join(t.TempDir(), "x.kbundle")
	_, _, err := Create(context.Background(), CreateConfig{Repo: site.Dir, Out: out, Path: "deploy", Images: DirExporter{testImageDir(t)}})
	if err == nil || !strings.Contains(err.Error(), "not in "+LockFile) && !strings.Contains(err.Error(), "pins sha256:aaaa") {
		t.Fatalf("create with a stale lock: err = %v", err)
	}
	t.Logf("refused: %v", err)
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused create left a bundle")
	}
	if _, err := WriteLock(context.Background(), LockConfig{Dir: site.Dir, Path: "deploy", Images: DirExporter{testImageDir(t)}}); err != nil {
		t.Fatal(err)
	}
	site.Commit("lock")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: out})
}

func TestParseLock(t *testing.T) {
	d := "sha256:" + strings.Repeat("0", 64)
	cases := []struct {
		name, text, want string // want: the lock as "name=digest" lines, or an error's text
	}{
		{"normalized", "# c\n\nnginx:1.7.9 " + d + "\n", "docker.io/library/nginx:1.7.9=" + d},
		{"three fields", "nginx:1.7.9 " + d + " x\n", "images.lock:1: want REFERENCE DIGEST"},
		{"bad digest", "nginx:1.7.9 sha256:abc\n", "images.lock:1: \"sha256:abc\" is not a sha256 digest"},
		{"twice", "nginx:1.7.9 " + d + "\ndocker.io/library/nginx:1.7.9 " + d + "\n", "images.lock:2: docker.io/library/nginx:1.7.9 listed twice"},
		{"bad reference", "NGINX " + d + "\n", "images.lock:1: image reference"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseLock([]byte(tc.text))
			got := ""
			if err != nil {
				got = err.Error()
			}
			for n, d := range l {
				got += n + "=" + string(d)
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("ParseLock = %q, want %q", got, tc.want)
			}
			if err == nil {
				again, err := ParseLock(l.Bytes())
				if err != nil || len(again) != len(l) {
					t.Fatalf("ParseLock(Bytes()) = %v, %v", again, err)
				}
			}
		})
	}
}
