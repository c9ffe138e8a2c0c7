package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
)

// mirrorSite is a repository with the seed example and a busybox job under
// deploy/, and a directory of the test images as OCI archives.
func mirrorSite(t *testing.T) (*testenv.GitRepo, string) {
	t.Helper()
	clearEnv(t)
	r := testenv.NewGitRepo(t)
	r.Write("deploy/web.yaml", nginxDeployment(2))
	r.Commit("web")
	images := t.TempDir()
	for _, s := range testimage.Standard() {
		if _, err := testimage.Build(images, s); err != nil {
			t.Fatal(err)
		}
	}
	return r, images
}

func TestMirrorCreateImportLs(t *testing.T) {
	r, images := mirrorSite(t)
	head := r.Git("rev-parse", "HEAD")
	bundle := filepath.Join(t.TempDir(), "site.kbundle")
	res := runMain(t, "mirror", "create", "--repo", r.Dir, "--path", "deploy", "--out", bundle, "--image-dir", images)
	if res.code != 0 {
		t.Fatalf("mirror create: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "refs/heads/main  "+head[:12]) || !strings.Contains(res.stdout, "1 images") {
		t.Errorf("mirror create output:\n%s", res.stdout)
	}

	dir := filepath.Join(t.TempDir(), "mirror")
	res = runMain(t, "mirror", "import", bundle, "--dir", dir, "-o", "json")
	if res.code != 0 {
		t.Fatalf("mirror import: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var imported struct {
		Refs []struct{ Name, New string }
	}
	if err := json.Unmarshal([]byte(res.stdout), &imported); err != nil || len(imported.Refs) != 1 || imported.Refs[0].New != head {
		t.Fatalf("mirror import -o json: %v\n%s", err, res.stdout)
	}

	res = runMain(t, "mirror", "ls", dir)
	if res.code != 0 {
		t.Fatalf("mirror ls: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"refs/heads/main", head[:12], testimage.NginxRef, "total "} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("mirror ls lacks %q:\n%s", want, res.stdout)
		}
	}
	t.Logf("mirror ls:\n%s", res.stdout)

	// A second commit that rewrites history is refused (exit 1, mirror
	// unchanged), then taken with --force.
	r.Git("commit", "-q", "--amend", "-m", "web, amended")
	forked := filepath.Join(t.TempDir(), "fork.kbundle")
	if res = runMain(t, "mirror", "create", "--repo", r.Dir, "--path", "deploy", "--out", forked, "--image-dir", images); res.code != 0 {
		t.Fatalf("mirror create: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = runMain(t, "mirror", "import", forked, "--dir", dir)
	if res.code != 1 || !strings.Contains(res.stderr, "--force accepts it") {
		t.Fatalf("non-descending import: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = runMain(t, "mirror", "import", forked, "--dir", dir, "--force")
	if res.code != 0 || !strings.Contains(res.stdout, "(forced)") {
		t.Fatalf("forced import: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// Usage mistakes.
	if res = runMain(t, "mirror", "import", "--dir", dir); res.code != 1 || !strings.Contains(res.stderr, "one bundle FILE") {
		t.Errorf("import without FILE: exit %d\n%s", res.code, res.stderr)
	}
	if res = runMain(t, "mirror", "create", "--repo", r.Dir); res.code != 1 || !strings.Contains(res.stderr, "out") {
		t.Errorf("create without --out: exit %d\n%s", res.code, res.stderr)
	}
}

// TestMirrorCreateFromContainerd takes the images from a real containerd
// and checks that containerd takes the mirror's layout back.
func TestMirrorCreateFromContainerd(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Root(t)
	ctr := testenv.Binary(t, "ctr", "containerd")
	r, images := mirrorSite(t)
	ns := fmt.Sprintf("kelpie-mirror-%d", os.Getpid()%100000)
	rt := []string{"--containerd-address", addr, "--containerd-namespace", ns}
	t.Cleanup(func() {
		for _, ref := range []string{testimage.NginxRef, testimage.BusyboxRef} {
			_ = exec.Command(ctr, "--address", addr, "-n", ns, "images", "rm", "--sync", ref).Run()
		}
		_ = exec.Command(ctr, "--address", addr, "namespaces", "rm", ns).Run()
	})
	entries, _ := os.ReadDir(images)
	for _, e := range entries {
		if res := runMain(t, append([]string{"image", "import", filepath.Join(images, e.Name())}, rt...)...); res.code != 0 {
			t.Fatalf("image import: exit %d\n%s", res.code, res.stderr)
		}
	}
	bundle := filepath.Join(t.TempDir(), "site.kbundle")
	res := runMain(t, append([]string{"mirror", "create", "--repo", r.Dir, "--path", "deploy", "--out", bundle, "-o", "json"}, rt...)...)
	if res.code != 0 {
		t.Fatalf("mirror create: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	dir := filepath.Join(t.TempDir(), "mirror")
	if res = runMain(t, "mirror", "import", bundle, "--dir", dir); res.code != 0 {
		t.Fatalf("mirror import: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// The layout imports into containerd as an image dir would.
	ns2 := []string{"--containerd-address", addr, "--containerd-namespace", ns + "-b"}
	t.Cleanup(func() {
		_ = exec.Command(ctr, "--address", addr, "-n", ns+"-b", "images", "rm", "--sync", testimage.NginxRef).Run()
		_ = exec.Command(ctr, "--address", addr, "namespaces", "rm", ns+"-b").Run()
	})
	res = runMain(t, append([]string{"image", "import", filepath.Join(dir, "images")}, ns2...)...)
	if res.code != 0 || !strings.Contains(res.stdout, testimage.NginxRef) {
		t.Fatalf("image import of the mirror layout: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestMirrorLock writes the image lock, which create then holds the images
// to: a stale lock makes create fail before it writes a bundle.
func TestMirrorLock(t *testing.T) {
	r, images := mirrorSite(t)
	res := runMain(t, "mirror", "lock", "--repo", r.Dir, "--path", "deploy", "--image-dir", images)
	if res.code != 0 || !strings.Contains(res.stdout, testimage.NginxRef) {
		t.Fatalf("mirror lock: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	want, _, _ := testimage.Manifest(testimage.Nginx())
	if lock := r.Read(".kelpie/images.lock"); !strings.Contains(lock, testimage.NginxRef+" "+string(want.Digest)) {
		t.Fatalf("images.lock:\n%s", lock)
	}
	res = runMain(t, "mirror", "lock", "--repo", r.Dir, "--path", "deploy", "--image-dir", images, "-o", "json")
	var out struct {
		File   string
		Images map[string]string
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || out.Images[testimage.NginxRef] != string(want.Digest) {
		t.Fatalf("mirror lock -o json: %v\n%s", err, res.stdout)
	}

	// Committed stale (another digest pinned): create refuses.
	r.Write(".kelpie/images.lock", testimage.NginxRef+" sha256:"+strings.Repeat("0", 64)+"\n")
	r.Commit("stale lock")
	bundle := filepath.Join(t.TempDir(), "site.kbundle")
	res = runMain(t, "mirror", "create", "--repo", r.Dir, "--path", "deploy", "--out", bundle, "--image-dir", images)
	if res.code != 1 || !strings.Contains(res.stderr, "pins sha256:0000") {
		t.Fatalf("create with a stale lock: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res = runMain(t, "mirror", "lock", "--repo", r.Dir, "--path", "deploy", "--image-dir", images); res.code != 0 {
		t.Fatalf("mirror lock: exit %d\n%s", res.code, res.stderr)
	}
	r.Commit("lock")
	if res = runMain(t, "mirror", "create", "--repo", r.Dir, "--path", "deploy", "--out", bundle, "--image-dir", images); res.code != 0 {
		t.Fatalf("create with a fresh lock: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
