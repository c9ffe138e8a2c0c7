package source

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// benchFiles is the size of the benchmark commit: 25 directories of 20
// manifests of about 1 KiB each.
const benchDirs, benchFilesPerDir = 25, 20

// newBenchRepo commits benchDirs*benchFilesPerDir files and returns the
// repository (loose objects) and a packed bare clone of it.
func newBenchRepo(b *testing.B) (loose, packed string) {
	b.Helper()
	r := testenv.NewGitRepo(b)
	for d := range benchDirs {
		for i := range benchFilesPerDir {
			var sb strings.Builder
			fmt.Fprintf(&sb, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%02d-%02d\nspec:\n", d, i)
			for line := 0; sb.Len() < 1024; line++ {
				fmt.Fprintf(&sb, "  # line %d of app %d/%d\n", line, d, i)
			}
			r.Write(fmt.Sprintf("apps/app-%02d/obj-%02d.yaml", d, i), sb.String())
		}
	}
	r.Commit("500 files")
	return r.Dir, testenv.BareClone(b, r.Dir)
}

// BenchmarkFSReadAll walks a 500-file commit and reads every file through
// Repo.FS. warm reuses one Repo (go-git's object cache stays warm, as in a
// long-lived agent); cold opens the repository every time, as `kelpie diff`
// does once.
func BenchmarkFSReadAll(b *testing.B) {
	loose, packed := newBenchRepo(b)
	for _, bc := range []struct {
		name string
		path string
		cold bool
	}{
		{"loose/warm", loose, false},
		{"packed/warm", packed, false},
		{"loose/cold", loose, true},
		{"packed/cold", packed, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := mustOpen(b, bc.path)
			c := mustResolve(b, r, "HEAD")
			var size int64
			for b.Loop() {
				if bc.cold {
					r.Close()
					var err error
					if r, err = OpenLocal(bc.path); err != nil {
						b.Fatal(err)
					}
				}
				fsys, err := r.FS(c)
				if err != nil {
					b.Fatal(err)
				}
				size = readEveryFile(b, fsys, benchDirs*benchFilesPerDir)
			}
			b.SetBytes(size)
			r.Close()
		})
	}
}

// BenchmarkWorktreeReadAll reads the same files from the work tree with
// os.DirFS: the baseline for BenchmarkFSReadAll.
func BenchmarkWorktreeReadAll(b *testing.B) {
	loose, _ := newBenchRepo(b)
	fsys := os.DirFS(loose)
	var size int64
	for b.Loop() {
		size = readEveryFile(b, fsys, benchDirs*benchFilesPerDir)
	}
	b.SetBytes(size)
}

// readEveryFile walks fsys, skipping .git, reads every regular file and
// checks their number; it returns the bytes read.
func readEveryFile(b *testing.B, fsys fs.FS, wantFiles int) int64 {
	var size int64
	files := 0
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == ".git":
			return fs.SkipDir
		case !d.Type().IsRegular():
			return nil
		}
		data, err := fs.ReadFile(fsys, name)
		size += int64(len(data))
		files++
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if files != wantFiles {
		b.Fatalf("read %d files, want %d", files, wantFiles)
	}
	return size
}
