package source

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

func TestOpenLocal(t *testing.T) {
	f := newFixture(t)
	bare := testenv.BareClone(t, f.Dir)
	worktree := filepath.Join(t.TempDir(), "wt")
	f.Git("worktree", "add", "-q", worktree, "feature")

	tests := []struct {
		name     string
		path     string
		wantRoot string
		wantHEAD string
	}{
		{"work tree root", f.Dir, f.Dir, f.c6},
		{"subdirectory", filepath.Join(f.Dir, "apps", "web"), f.Dir, f.c6},
		{"file in work tree", filepath.Join(f.Dir, "bin", "run.sh"), f.Dir, f.c6},
		{"relative path", relPath(t, filepath.Join(f.Dir, "apps")), f.Dir, f.c6},
		{"bare clone", bare, "", f.c6},
		{"inside bare clone", filepath.Join(bare, "refs", "heads"), "", f.c6},
		{"linked work tree", worktree, worktree, f.f1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustOpen(t, tt.path)
			if got := r.Root(); got != tt.wantRoot {
				t.Errorf("Root() = %q, want %q", got, tt.wantRoot)
			}
			if got := mustResolve(t, r, "HEAD"); got.Hash != tt.wantHEAD {
				t.Errorf("HEAD = %s, want %s", got.Hash, tt.wantHEAD)
			}
		})
	}
}

func TestOpenLocalErrors(t *testing.T) {
	empty := t.TempDir()
	missing := filepath.Join(empty, "missing")
	tests := []struct {
		name string
		path string
		want error
	}{
		{"not a repository", empty, ErrNotRepository},
		{"missing path", missing, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenLocal(tt.path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenLocal(%s) = %v, want %v", tt.path, err, tt.want)
			}
			if prefix := "open repository " + tt.path + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("error %q does not start with %q", err, prefix)
			}
		})
	}
}

// relPath returns path relative to the current directory.
func relPath(t *testing.T, path string) string {
	t.Helper()
	wd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}
