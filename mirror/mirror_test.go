package mirror

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/source"
)

// deployment is a manifest of a Deployment running image with replicas.
func deployment(name, image string, replicas int) string {
	return testenv.Deployment{Name: name, Replicas: replicas, Container: testenv.Container{ContainerName: name, Image: image}}.YAML()
}

// imageDir builds the standard test images (busybox, nginx) as OCI
// archives in a directory, once per test binary.
var imageDirOnce struct {
	sync.Once
	dir string
	err error
}

func testImageDir(t testing.TB) string {
	t.Helper()
	imageDirOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kelpie-mirror-images-*")
		if err != nil {
			imageDirOnce.err = err
			return
		}
		imageDirOnce.dir = dir
		for _, s := range testimage.Standard() {
			if _, err := testimage.Build(dir, s); err != nil {
				imageDirOnce.err = err
				return
			}
		}
	})
	if imageDirOnce.err != nil {
		testenv.Missing(t, "build test images (they need %s: apt-get install busybox-static): %v", testimage.DefaultBusybox, imageDirOnce.err)
	}
	return imageDirOnce.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if imageDirOnce.dir != "" {
		os.RemoveAll(imageDirOnce.dir)
	}
	os.Exit(code)
}

// newSite makes a repository with two commits using both test images.
func newSite(t *testing.T) (*testenv.GitRepo, []string) {
	r := testenv.NewGitRepo(t)
	r.Write("deploy/web.yaml", deployment("web", "nginx:1.7.9", 2))
	c1 := r.Commit("web")
	r.Write("deploy/tools.yaml", deployment("tools", testimage.BusyboxRef, 1))
	c2 := r.Commit("tools")
	return r, []string{c1, c2}
}

func mustCreate(t *testing.T, cfg CreateConfig) (*Index, string) {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = "deploy"
	}
	if cfg.Images == nil {
		cfg.Images = DirExporter{testImageDir(t)}
	}
	x, _, err := Create(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return x, cfg.Out
}

func importOK(t *testing.T, cfg ImportConfig) *ImportResult {
	t.Helper()
	res, err := Import(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return res
}

// layoutNames lists the image names of the mirror's layout.
func layoutNames(t *testing.T, dir string) []string {
	t.Helper()
	idx, err := readLayoutIndex(filepath.Join(dir, ImagesDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range idx.Manifests {
		names = append(names, d.Annotations[annotationImageName])
	}
	sort.Strings(names)
	return names
}

// blobsInBundle counts the image blobs a bundle file carries.
func blobsInBundle(t *testing.T, file string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := testenv.TarEntries(t, f)[ImagesPart]
	n := 0
	for name := range testenv.TarEntries(t, io.NewSectionReader(f, e[0], e[1])) {
		if strings.HasPrefix(name, "blobs/") {
			n++
		}
	}
	return n
}

func TestCreateImport(t *testing.T) {
	site, commits := newSite(t)
	out := filepath.Join(t.TempDir(), "site.kbundle")
	x, _ := mustCreate(t, CreateConfig{Repo: site.Dir, Out: out})
	if len(x.Refs) != 1 || x.Refs[0].Name != "refs/heads/main" || x.Refs[0].Commit != commits[1] {
		t.Fatalf("index refs = %+v", x.Refs)
	}
	if len(x.Images) != 2 || x.Images[0].Name != testimage.BusyboxRef || x.Images[1].Name != testimage.NginxRef {
		t.Fatalf("index images = %+v", x.Images)
	}
	if x.Since != nil {
		t.Fatalf("full bundle has a basis: %+v", x.Since)
	}
	fi, _ := os.Stat(out)
	t.Logf("full bundle: %d bytes, %d blobs", fi.Size(), blobsInBundle(t, out))

	dir := filepath.Join(t.TempDir(), "mirror")
	res := importOK(t, ImportConfig{File: out, Dir: dir})
	if len(res.Refs) != 1 || res.Refs[0].Old != "" || res.Refs[0].New != commits[1] || res.BlobsAdded == 0 {
		t.Fatalf("import result = %+v", res)
	}
	log := testenv.Git(t, filepath.Join(dir, RepoDir), "log", "--format=%H", "main")
	if want := commits[1] + "\n" + commits[0]; log != want {
		t.Fatalf("git log in the mirror:\n%s\nwant\n%s", log, want)
	}
	testenv.Git(t, filepath.Join(dir, RepoDir), "fsck", "--no-progress")
	if got := layoutNames(t, dir); strings.Join(got, " ") != testimage.BusyboxRef+" "+testimage.NginxRef {
		t.Fatalf("layout names = %v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("mirror dir holds %d entries, want site.git and images only", len(entries))
	}

	// The layout is an image dir as the agent reads it: runtime finds both
	// images there, with every blob.
	exported, err := image.ExportImagesFromDirs(context.Background(), []string{filepath.Join(dir, ImagesDir)}, io.Discard,
		[]string{"nginx:1.7.9", "busybox:1.36"}, image.ExportOptions{})
	if err != nil {
		t.Fatalf("read the mirror's layout as an image dir: %v", err)
	}
	want, _, _ := testimage.Manifest(testimage.Nginx())
	if exported[0].Target.Digest != want.Digest {
		t.Fatalf("nginx in the mirror is %s, want %s", exported[0].Target.Digest, want.Digest)
	}

	l, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Refs) != 1 || l.Refs[0].Commits != 2 || len(l.Images) != 2 || l.Images[0].Missing != 0 || l.Images[0].Size == 0 || l.Size == 0 {
		t.Fatalf("List = %+v", l)
	}

	// Importing the same bundle again changes nothing.
	before := testenv.TreeDigest(t, dir)
	importOK(t, ImportConfig{File: out, Dir: dir})
	if testenv.TreeDigest(t, dir) != before {
		t.Fatal("importing the same bundle again changed the mirror")
	}
}

func TestIncremental(t *testing.T) {
	site, commits := newSite(t)
	dir := filepath.Join(t.TempDir(), "mirror")
	full := filepath.Join(t.TempDir(), "full.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: full})
	importOK(t, ImportConfig{File: full, Dir: dir})

	// A one-line change: replicas 2 → 3. No image changes.
	site.Write("deploy/web.yaml", deployment("web", "nginx:1.7.9", 3))
	c3 := site.Commit("scale web")

	for _, since := range []string{full, commits[1]} {
		inc := filepath.Join(t.TempDir(), "inc.kbundle")
		x, _ := mustCreate(t, CreateConfig{Repo: site.Dir, Out: inc, Since: since})
		if x.Since == nil || len(x.Since.Prerequisites) != 1 || x.Since.Prerequisites[0] != commits[1] {
			t.Fatalf("--since %s: basis = %+v", since, x.Since)
		}
		for _, img := range x.Images {
			if img.Carried != 0 {
				t.Fatalf("--since %s: image %s carries %d blobs, want 0", since, img.Name, img.Carried)
			}
		}
		if n := blobsInBundle(t, inc); n != 0 {
			t.Fatalf("--since %s: incremental bundle holds %d image blobs, want 0", since, n)
		}
		fi, _ := os.Stat(inc)
		t.Logf("incremental bundle (--since %s) for a one-line change: %d bytes", filepath.Base(since), fi.Size())
		if fi.Size() > 64<<10 {
			t.Errorf("incremental bundle is %d bytes; a one-line change should take kilobytes", fi.Size())
		}
	}

	inc := filepath.Join(t.TempDir(), "inc.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: inc, Since: full})
	res := importOK(t, ImportConfig{File: inc, Dir: dir})
	if res.Refs[0].Old != commits[1] || res.Refs[0].New != c3 || res.BlobsAdded != 0 {
		t.Fatalf("import result = %+v", res)
	}
	log := testenv.Git(t, filepath.Join(dir, RepoDir), "log", "--format=%H", "main")
	if !strings.HasPrefix(log, c3+"\n") || strings.Count(log, "\n") != 2 {
		t.Fatalf("git log in the mirror:\n%s", log)
	}
	testenv.Git(t, filepath.Join(dir, RepoDir), "fsck", "--no-progress")
	if got := layoutNames(t, dir); len(got) != 2 {
		t.Fatalf("layout names = %v", got)
	}

	// An incremental bundle cannot go into an empty mirror.
	empty := filepath.Join(t.TempDir(), "empty")
	if _, err := Import(context.Background(), ImportConfig{File: inc, Dir: empty}); !errors.Is(err, source.ErrMissingPrerequisite) {
		t.Fatalf("incremental into an empty mirror: err = %v", err)
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused import left %s behind", empty)
	}
}

func TestRefused(t *testing.T) {
	site, commits := newSite(t)
	dir := filepath.Join(t.TempDir(), "mirror")
	full := filepath.Join(t.TempDir(), "full.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: full})
	importOK(t, ImportConfig{File: full, Dir: dir})

	site.Write("deploy/web.yaml", deployment("web", "nginx:1.7.9", 3))
	site.Commit("scale web")
	next := filepath.Join(t.TempDir(), "next.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: next})
	data, err := os.ReadFile(next)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(next)
	entries := testenv.TarEntries(t, f)
	img := entries[ImagesPart]
	var blobOff int64
	for name, e := range testenv.TarEntries(t, io.NewSectionReader(f, img[0], img[1])) {
		if strings.HasPrefix(name, "blobs/") && e[1] > 1000 {
			blobOff = img[0] + e[0] + e[1]/2
		}
	}
	f.Close()
	if blobOff == 0 {
		t.Fatal("no large blob in the bundle")
	}

	// A history that does not descend from the mirror's main.
	site.Git("reset", "-q", "--hard", commits[0])
	site.Write("deploy/web.yaml", deployment("web", "nginx:1.7.9", 5))
	forked := site.Commit("fork")
	fork := filepath.Join(t.TempDir(), "fork.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: fork})

	flip := func(off int64) []byte {
		b := append([]byte(nil), data...)
		b[off] ^= 0x01
		return b
	}
	gitPart := entries[GitPart]
	cases := []struct {
		name string
		data []byte
		file string
		want error
	}{
		{"git byte flipped", flip(gitPart[0] + gitPart[1]/2), "", ErrCorrupt},
		{"git header byte flipped", flip(gitPart[0] + 20), "", ErrCorrupt},
		{"image blob byte flipped", flip(blobOff), "", ErrCorrupt},
		{"index byte flipped", flip(entries[IndexName][0] + 30), "", ErrCorrupt},
		{"truncated", data[:len(data)/2], "", ErrCorrupt},
		{"truncated in the index", data[:600], "", ErrCorrupt},
		{"not descending", nil, fork, source.ErrNotFastForward},
	}
	before := testenv.TreeDigest(t, dir)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = filepath.Join(t.TempDir(), "bad.kbundle")
				if err := os.WriteFile(file, tc.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Import(context.Background(), ImportConfig{File: file, Dir: dir})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("refused: %v", err)
			if testenv.TreeDigest(t, dir) != before {
				t.Fatal("refused import changed the mirror")
			}
		})
	}

	// --force takes the forked history.
	res := importOK(t, ImportConfig{File: fork, Dir: dir, Force: true})
	if !res.Refs[0].Forced || res.Refs[0].New != forked {
		t.Fatalf("forced import = %+v", res)
	}
	if got := testenv.Git(t, filepath.Join(dir, RepoDir), "rev-parse", "main"); got != forked {
		t.Fatalf("mirror main = %s, want %s", got, forked)
	}
}

func TestCreateErrors(t *testing.T) {
	site, _ := newSite(t)
	out := filepath.Join(t.TempDir(), "x.kbundle")
	_, _, err := Create(context.Background(), CreateConfig{Repo: site.Dir, Out: out, Path: "deploy", Refs: []string{"nope"}, Images: DirExporter{testImageDir(t)}})
	if !errors.Is(err, source.ErrUnknownRevision) {
		t.Fatalf("unknown ref: err = %v", err)
	}
	_, _, err = Create(context.Background(), CreateConfig{Repo: site.Dir, Out: out, Path: "deploy", Images: DirExporter{t.TempDir()}})
	if !errors.Is(err, image.ErrImageNotFound) {
		t.Fatalf("missing image: err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed create left a bundle")
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*"))
	if len(matches) != 0 {
		t.Fatalf("a failed create left temporary files: %v", matches)
	}
}

// signingKey makes a throwaway OpenPGP key and writes its armored public
// part to a file.
func signingKey(t testing.TB) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity("release", "test key", "release@example.com",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "keys.asc")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w, err := armor.Encode(f, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	return e, file
}

// commitSigned commits the work tree with go-git, signed by key (unsigned
// when key is nil).
func commitSigned(r *testenv.GitRepo, msg string, key *openpgp.Entity) string {
	r.TB.Helper()
	repo, err := git.PlainOpen(r.Dir)
	if err != nil {
		r.TB.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		r.TB.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		r.TB.Fatal(err)
	}
	sig := &object.Signature{Name: "Ada Author", Email: "ada@example.com", When: testenv.GitEpoch.Add(time.Duration(r.Commits) * time.Minute)}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, SignKey: key})
	if err != nil {
		r.TB.Fatal(err)
	}
	r.Commits++
	return h.String()
}

func TestVerifyKeys(t *testing.T) {
	key, keys := signingKey(t)
	site := testenv.NewGitRepo(t)
	site.Write("deploy/web.yaml", deployment("web", "nginx:1.7.9", 2))
	if _, err := WriteLock(context.Background(), LockConfig{Dir: site.Dir, Path: "deploy", Images: DirExporter{testImageDir(t)}}); err != nil {
		t.Fatal(err)
	}
	signed := commitSigned(site, "signed", key)

	dir := filepath.Join(t.TempDir(), "mirror")
	full := filepath.Join(t.TempDir(), "full.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: full})
	res := importOK(t, ImportConfig{File: full, Dir: dir, VerifyKeysFile: keys})
	if res.Refs[0].New != signed {
		t.Fatalf("import = %+v", res)
	}

	site.Write("deploy/web.yaml", deployment("web", "nginx:1.7.9", 3))
	commitSigned(site, "unsigned", nil)
	inc := filepath.Join(t.TempDir(), "inc.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: inc, Since: full})
	before := testenv.TreeDigest(t, dir)
	_, err := Import(context.Background(), ImportConfig{File: inc, Dir: dir, VerifyKeysFile: keys})
	if !errors.Is(err, source.ErrUntrusted) {
		t.Fatalf("unsigned head: err = %v, want ErrUntrusted", err)
	}
	if testenv.TreeDigest(t, dir) != before {
		t.Fatal("refused import changed the mirror")
	}
	// Without --verify-keys the same bundle is taken.
	importOK(t, ImportConfig{File: inc, Dir: dir})
}

// TestCreateFromURL fetches the repository through a URL into a temporary
// cache, and names refs as upstream does.
func TestCreateFromURL(t *testing.T) {
	site, commits := newSite(t)
	site.Git("tag", "-a", "-m", "release", "v1")
	out := filepath.Join(t.TempDir(), "url.kbundle")
	x, _ := mustCreate(t, CreateConfig{Repo: "file://" + site.Dir, Refs: []string{"main", "v1"}, Out: out})
	if len(x.Refs) != 2 || x.Refs[0] != (source.BundleRef{Name: "refs/heads/main", Commit: commits[1]}) ||
		x.Refs[1].Name != "refs/tags/v1" || x.Refs[1].Commit == commits[1] {
		t.Fatalf("refs = %+v (want main, and v1 as its annotated tag object)", x.Refs)
	}
	dir := filepath.Join(t.TempDir(), "mirror")
	importOK(t, ImportConfig{File: out, Dir: dir})
	if got := testenv.Git(t, filepath.Join(dir, RepoDir), "rev-parse", "v1^{commit}"); got != commits[1] {
		t.Fatalf("mirror v1 = %s, want %s", got, commits[1])
	}
}

// TestWatchRefsSeesImport checks that an agent watching the mirror's
// repository (source.WatchRefs) is told when an import moves its refs.
func TestWatchRefsSeesImport(t *testing.T) {
	site, _ := newSite(t)
	dir := filepath.Join(t.TempDir(), "mirror")
	full := filepath.Join(t.TempDir(), "full.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: full})
	importOK(t, ImportConfig{File: full, Dir: dir})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	triggers := make(chan source.Trigger, 8)
	done := make(chan error, 1)
	go func() { done <- source.WatchRefs(ctx, []string{filepath.Join(dir, RepoDir)}, triggers) }()
	testenv.WaitWatched(t, 5*time.Second, testenv.RefWatchDirs(filepath.Join(dir, RepoDir))...)

	site.Write("deploy/web.yaml", deployment("web", "nginx:1.7.9", 3))
	site.Commit("scale web")
	inc := filepath.Join(t.TempDir(), "inc.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: inc, Since: full})
	importOK(t, ImportConfig{File: inc, Dir: dir})
	select {
	case tr := <-triggers:
		t.Logf("trigger: %s", tr.Reason)
	case <-time.After(10 * time.Second):
		t.Fatal("WatchRefs did not notice the import")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestIncrementalNewImage: a commit that adds an image carries that image's
// blobs only.
func TestIncrementalNewImage(t *testing.T) {
	images := t.TempDir()
	extra := testimage.Busybox()
	extra.Name = "registry.local/extra:1"
	extra.Files = map[string]string{"/extra.txt": "extra\n"}
	for _, s := range append(testimage.Standard(), extra) {
		if _, err := testimage.Build(images, s); err != nil {
			t.Fatal(err)
		}
	}
	site, _ := newSite(t)
	dir := filepath.Join(t.TempDir(), "mirror")
	full := filepath.Join(t.TempDir(), "full.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: full, Images: DirExporter{images}})
	importOK(t, ImportConfig{File: full, Dir: dir})

	site.Write("deploy/extra.yaml", deployment("extra", extra.Name, 1))
	site.Commit("extra")
	inc := filepath.Join(t.TempDir(), "inc.kbundle")
	x, _ := mustCreate(t, CreateConfig{Repo: site.Dir, Out: inc, Since: full, Images: DirExporter{images}})
	for _, img := range x.Images {
		switch {
		case img.Name == extra.Name && img.Carried != 3:
			t.Errorf("new image %s carries %d of 3 blobs", img.Name, img.Carried)
		case img.Name != extra.Name && img.Carried != 0:
			t.Errorf("old image %s carries %d blobs", img.Name, img.Carried)
		}
	}
	res := importOK(t, ImportConfig{File: inc, Dir: dir})
	if res.BlobsAdded != 3 {
		t.Fatalf("import added %d blobs, want 3", res.BlobsAdded)
	}
	if got := layoutNames(t, dir); len(got) != 3 {
		t.Fatalf("layout names = %v", got)
	}
	l, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range l.Images {
		if img.Missing != 0 || img.Blobs != 3 {
			t.Errorf("listed image %+v", img)
		}
	}
}

// TestInterrupted: an import cancelled half-way leaves the mirror as it was,
// and the staging directory it leaves after a crash is removed by the next.
func TestInterrupted(t *testing.T) {
	site, _ := newSite(t)
	dir := filepath.Join(t.TempDir(), "mirror")
	full := filepath.Join(t.TempDir(), "full.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: full})
	importOK(t, ImportConfig{File: full, Dir: dir})
	site.Write("deploy/web.yaml", deployment("web", "nginx:1.7.9", 3))
	site.Commit("scale web")
	next := filepath.Join(t.TempDir(), "next.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: next}) // full again: megabytes to read

	before := testenv.TreeDigest(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Import(ctx, ImportConfig{File: next, Dir: dir, Progress: func(p Progress) {
		if p.Stage == "read" && p.Current > 0 {
			cancel() // half-way through the images
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled import: err = %v", err)
	}
	if testenv.TreeDigest(t, dir) != before {
		t.Fatal("cancelled import changed the mirror")
	}

	// A crash leaves a staging directory: the next import removes it.
	stale := filepath.Join(dir, stagingPrefix+"crashed")
	if err := os.MkdirAll(filepath.Join(stale, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	importOK(t, ImportConfig{File: next, Dir: dir})
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stale staging directory left")
	}

	// Two imports at once: the second is refused, not interleaved.
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := Import(context.Background(), ImportConfig{File: next, Dir: dir}); !errors.Is(err, ErrBusy) {
		t.Fatalf("import while locked: err = %v", err)
	}
}

// TestFirstImportKeepsForeignImagesDir: the audit's reproduction: a first
// import into a DIR whose images/ holds someone's files (not an OCI layout)
// wiped them. It is refused now, and the files stay.
func TestFirstImportKeepsForeignImagesDir(t *testing.T) {
	site, _ := newSite(t)
	out := filepath.Join(t.TempDir(), "site.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: out})
	dir := filepath.Join(t.TempDir(), "mirror")
	keep := filepath.Join(dir, ImagesDir, "precious.txt")
	if err := os.MkdirAll(filepath.Dir(keep), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := testenv.TreeDigest(t, dir)
	_, err := Import(context.Background(), ImportConfig{File: out, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Fatalf("import over a foreign images dir: %v, want a refusal", err)
	}
	if got := testenv.TreeDigest(t, dir); got != before {
		t.Fatal("the refused import changed the directory")
	}
}
