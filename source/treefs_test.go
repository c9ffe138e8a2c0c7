package source

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// fsAt opens the fixture and returns the file system of rev.
func fsAt(t *testing.T, path, rev string) fs.FS {
	t.Helper()
	r := mustOpen(t, path)
	fsys, err := r.FS(mustResolve(t, r, rev))
	if err != nil {
		t.Fatalf("FS(%s): %v", rev, err)
	}
	return fsys
}

func TestFSPassesFSTest(t *testing.T) {
	f := newFixture(t)
	bare := testenv.BareClone(t, f.Dir)
	tests := []struct {
		rev   string
		files []string
	}{
		{"main", []string{
			"README.md", "apps.yaml", "apps/web/deploy.yaml", "apps/api/svc.yaml", "bin/run.sh",
			"feature.txt", "docs/guide/intro.md", "link.yaml",
		}},
		{"v0.9", []string{"README.md", "apps.yaml", "apps/web/deploy.yaml", "apps/api/svc.yaml", "bin/run.sh"}},
		{f.c1, []string{"README.md", "apps/web/deploy.yaml", "bin/run.sh"}},
	}
	for _, repo := range []struct{ name, path string }{{"loose", f.Dir}, {"packed bare", bare}} {
		for _, tt := range tests {
			t.Run(repo.name+"/"+short12(tt.rev), func(t *testing.T) {
				if err := fstest.TestFS(fsAt(t, repo.path, tt.rev), tt.files...); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestFSReadFile reads content as committed at each commit, never the work
// tree's (README.md has an uncommitted change).
func TestFSReadFile(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		rev, name, want string
	}{
		{"main", "README.md", "# demo v2\n"},
		{f.c1, "README.md", "# demo v1\n"},
		{f.c1, "apps/web/deploy.yaml", "kind: Deployment\nreplicas: 1\n"},
		{"light", "apps/web/deploy.yaml", "kind: Deployment\nreplicas: 2\n"},
		{"v1.0", "apps/web/deploy.yaml", "kind: Deployment\nreplicas: 3\n"},
		{"feature", "feature.txt", "feature\n"},
		{"feature", "apps/web/deploy.yaml", "kind: Deployment\nreplicas: 2\n"},
		{"main", "bin/run.sh", "#!/bin/sh\necho run\n"},
		{"main", "link.yaml", "apps/web/deploy.yaml"}, // a symlink reads as its target
	}
	r := mustOpen(t, f.Dir)
	for _, tt := range tests {
		t.Run(tt.rev+":"+tt.name, func(t *testing.T) {
			fsys, err := r.FS(mustResolve(t, r, tt.rev))
			if err != nil {
				t.Fatal(err)
			}
			got, err := fs.ReadFile(fsys, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("ReadFile(%s) at %s = %q, want %q", tt.name, tt.rev, got, tt.want)
			}
			// Open+Read must agree with ReadFile.
			file, err := fsys.Open(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			viaOpen, err := io.ReadAll(file)
			if err != nil || !bytes.Equal(viaOpen, got) {
				t.Fatalf("Open+ReadAll = %q, %v; ReadFile = %q", viaOpen, err, got)
			}
		})
	}
}

func TestFSReadDir(t *testing.T) {
	f := newFixture(t)
	fsys := fsAt(t, f.Dir, "main")
	type entry struct {
		name string
		mode fs.FileMode
	}
	tests := []struct {
		dir  string
		want []entry
	}{
		{".", []entry{
			{"README.md", 0o644}, {"apps", fs.ModeDir | 0o755}, {"apps.yaml", 0o644}, {"bin", fs.ModeDir | 0o755},
			{"docs", fs.ModeDir | 0o755}, {"feature.txt", 0o644}, {"link.yaml", fs.ModeSymlink | 0o777},
		}},
		{"apps", []entry{{"api", fs.ModeDir | 0o755}, {"web", fs.ModeDir | 0o755}}},
		{"apps/web", []entry{{"deploy.yaml", 0o644}}},
		{"bin", []entry{{"run.sh", 0o755}}},
		{"docs/guide", []entry{{"intro.md", 0o644}}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			entries, err := fs.ReadDir(fsys, tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []entry
			for _, e := range entries {
				info, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().Type() != e.Type() {
					t.Errorf("%s: Info().Mode() %v disagrees with Type() %v", e.Name(), info.Mode(), e.Type())
				}
				got = append(got, entry{e.Name(), info.Mode()})
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ReadDir(%s) =\n%v\nwant\n%v", tt.dir, got, tt.want)
			}
		})
	}
}

func TestFSStat(t *testing.T) {
	f := newFixture(t)
	r := mustOpen(t, f.Dir)
	c := mustResolve(t, r, "main")
	fsys, err := r.FS(c)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mode fs.FileMode
		size int64
	}{
		{".", fs.ModeDir | 0o755, 0},
		{"README.md", 0o644, int64(len("# demo v2\n"))},
		{"bin/run.sh", 0o755, int64(len("#!/bin/sh\necho run\n"))},
		{"apps/web", fs.ModeDir | 0o755, 0},
		{"link.yaml", fs.ModeSymlink | 0o777, int64(len("apps/web/deploy.yaml"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := fs.Stat(fsys, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode() != tt.mode || info.Size() != tt.size || !info.ModTime().Equal(c.When) {
				t.Fatalf("Stat(%s) = %v %d %v, want %v %d %v",
					tt.name, info.Mode(), info.Size(), info.ModTime(), tt.mode, tt.size, c.When)
			}
			if want := filepath.Base(tt.name); info.Name() != want {
				t.Fatalf("Name() = %q, want %q", info.Name(), want)
			}
		})
	}
	target, err := fs.ReadLink(fsys, "link.yaml")
	if err != nil || target != "apps/web/deploy.yaml" {
		t.Errorf("ReadLink(link.yaml) = %q, %v", target, err)
	}
	if _, err := fs.ReadLink(fsys, "README.md"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadLink(README.md) error = %v, want fs.ErrInvalid", err)
	}
}

func TestFSErrors(t *testing.T) {
	f := newFixture(t)
	fsys := fsAt(t, f.Dir, "main")
	notExist, invalid := fs.ErrNotExist, fs.ErrInvalid
	tests := []struct {
		op, name string
		want     error // nil: any *fs.PathError
	}{
		{"open", "nope", notExist},
		{"open", "apps/nope.yaml", notExist},
		{"open", "nope/deploy.yaml", notExist},
		{"open", "README.md/x", notExist}, // through a file
		{"stat", "apps/web/nope", notExist},
		{"readfile", "docs/nope.md", notExist},
		{"readdir", "nope", notExist},
		{"readdir", "README.md", nil}, // not a directory: not ErrNotExist
		{"readfile", "apps", nil},     // a directory: not ErrNotExist
		{"open", "/README.md", invalid},
		{"open", "./README.md", invalid},
		{"stat", "apps/../README.md", invalid},
		{"readfile", "apps//web", invalid},
		{"readdir", "", invalid},
	}
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.name, func(t *testing.T) {
			var err error
			switch tt.op {
			case "open":
				_, err = fsys.Open(tt.name)
			case "stat":
				_, err = fs.Stat(fsys, tt.name)
			case "readfile":
				_, err = fs.ReadFile(fsys, tt.name)
			case "readdir":
				_, err = fs.ReadDir(fsys, tt.name)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != tt.name {
				t.Fatalf("%s(%q) error = %#v, want *fs.PathError for the path", tt.op, tt.name, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("%s(%q) error = %v, want %v", tt.op, tt.name, err, tt.want)
			}
			if tt.want == nil && errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s(%q) error = %v, must not be fs.ErrNotExist", tt.op, tt.name, err)
			}
		})
	}
}

// TestFSSubmodule: a gitlink is listed, stats as irregular and cannot be
// read.
func TestFSSubmodule(t *testing.T) {
	sub := testenv.NewGitRepo(t)
	sub.Write("inner.txt", "inner\n")
	subHead := sub.Commit("sub")

	r := testenv.NewGitRepo(t)
	r.Write("top.txt", "top\n")
	r.Git("add", "top.txt")
	r.Git("update-index", "--add", "--cacheinfo", "160000,"+subHead+",vendor/sub")
	r.Git("commit", "-q", "-m", "with submodule")
	r.Commits++

	fsys := fsAt(t, r.Dir, "HEAD")
	entries, err := fs.ReadDir(fsys, "vendor")
	if err != nil || len(entries) != 1 || entries[0].Name() != "sub" || entries[0].Type() != fs.ModeIrregular {
		t.Fatalf("ReadDir(vendor) = %v, %v; want one irregular entry sub", entries, err)
	}
	info, err := fs.Stat(fsys, "vendor/sub")
	if err != nil || info.Mode() != fs.ModeIrregular || info.Size() != 0 {
		t.Fatalf("Stat(vendor/sub) = %v, %v", info, err)
	}
	if _, err := fs.ReadFile(fsys, "vendor/sub"); !errors.Is(err, ErrSubmodule) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(vendor/sub) error = %v, want ErrSubmodule and fs.ErrNotExist", err)
	}
	file, err := fsys.Open("vendor/sub")
	if err != nil {
		t.Fatalf("Open(vendor/sub): %v", err)
	}
	defer file.Close()
	if _, err := io.Copy(io.Discard, file); !errors.Is(err, ErrSubmodule) {
		t.Fatalf("reading an open submodule: error = %v, want ErrSubmodule", err)
	}
}

// TestFSIsLazy deletes one loose blob: the file system still opens, lists
// and reads every other file, so it cannot have read all blobs up front.
func TestFSIsLazy(t *testing.T) {
	f := newFixture(t)
	blob := f.Git("rev-parse", "main:apps/api/svc.yaml")
	if err := os.Remove(filepath.Join(f.Dir, ".git", "objects", blob[:2], blob[2:])); err != nil {
		t.Fatal(err)
	}
	fsys := fsAt(t, f.Dir, "main")
	if b, err := fs.ReadFile(fsys, "apps/web/deploy.yaml"); err != nil || len(b) == 0 {
		t.Fatalf("ReadFile(apps/web/deploy.yaml) = %q, %v", b, err)
	}
	if entries, err := fs.ReadDir(fsys, "apps/api"); err != nil || len(entries) != 1 {
		t.Fatalf("ReadDir(apps/api) = %v, %v", entries, err)
	}
	if _, err := fs.ReadFile(fsys, "apps/api/svc.yaml"); err == nil {
		t.Fatal("ReadFile of the deleted blob succeeded")
	}
}

// TestFSConcurrent reads every file from many goroutines at once; run with
// -race to check the locking.
func TestFSConcurrent(t *testing.T) {
	f := newFixture(t)
	r := mustOpen(t, f.Dir)
	c := mustResolve(t, r, "main")
	fsys, err := r.FS(c)
	if err != nil {
		t.Fatal(err)
	}
	want := readAllFiles(t, fsys)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			other, err := r.FS(c) // a second file system shares the repository
			if err != nil {
				t.Error(err)
				return
			}
			for _, x := range []fs.FS{fsys, other} {
				if got := readAllFiles(t, x); !maps.Equal(got, want) {
					t.Error("concurrent read differs")
				}
			}
			if _, err := r.Resolve("HEAD~1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestFSRejectsBadCommit(t *testing.T) {
	f := newFixture(t)
	r := mustOpen(t, f.Dir)
	for _, c := range []Commit{{}, {Hash: "abc"}, {Hash: "0000000000000000000000000000000000000000"}} {
		if _, err := r.FS(c); err == nil {
			t.Errorf("FS(%q) succeeded", c.Hash)
		}
	}
}

// readAllFiles walks fsys and reads every regular file.
func readAllFiles(tb testing.TB, fsys fs.FS) map[string]string {
	tb.Helper()
	files := make(map[string]string)
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		files[name] = string(b)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}
