package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelpie-dev/kelpie/specs"
)

// manifestSources turns paths typed on the command line (directories or
// files) into specs sources whose positions name the path as typed.
func manifestSources(paths []string) ([]specs.Source, error) {
	var out []specs.Source
	paths = dropNested(paths)
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read manifests %s: %w", p, unwrapPathError(err))
		}
		clean := filepath.Clean(p)
		if info.IsDir() {
			src := specs.Source{FS: os.DirFS(clean), Root: ".", Prefix: prefixFor(clean)}
			src.Repo, src.RepoDir = workTreeAround(clean)
			out = append(out, src)
			continue
		}
		dir := filepath.Dir(clean)
		src := specs.Source{FS: os.DirFS(dir), Root: filepath.Base(clean), Prefix: prefixFor(dir)}
		src.Repo, src.RepoDir = workTreeAround(dir)
		out = append(out, src)
	}
	return out, nil
}

// dropNested removes paths that another path already covers (the same
// path twice, or a file or directory inside a directory also given), so no
// file is read twice and reported as a duplicate of itself.
func dropNested(paths []string) []string {
	abs := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			a = p
		}
		abs[i] = a
	}
	var out []string
	for i, p := range paths {
		covered := false
		for j, other := range abs {
			if i == j {
				continue
			}
			inside := strings.HasPrefix(abs[i], other+string(filepath.Separator))
			same := abs[i] == other && j < i
			if inside || same {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// prefixFor is the position prefix of a directory: none for ".".
func prefixFor(dir string) string {
	if dir == "." {
		return ""
	}
	return filepath.ToSlash(dir)
}

// unwrapPathError drops *fs.PathError's repetition of the path.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// manifestError is one manifest problem in -o json output.
type manifestError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// manifestErrors converts a specs.ErrorList for JSON output.
func manifestErrors(list specs.ErrorList) []manifestError {
	out := make([]manifestError, 0, len(list))
	for _, e := range list {
		out = append(out, manifestError{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Column, Field: e.Field, Message: e.Message})
	}
	return out
}

// printManifestErrors writes the problems one per line, compiler style.
func printManifestErrors(w io.Writer, list specs.ErrorList) {
	for _, e := range list {
		fmt.Fprintln(w, e.Error())
	}
}

// workTreeAround returns the git work tree that holds directory dir and
// dir's place in it, so a kustomization under dir can use bases elsewhere
// in the repository (../../base); nil outside a work tree (a kustomization
// then reaches only what is under dir).
func workTreeAround(dir string) (fs.FS, string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, ""
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	for top := abs; ; {
		if _, err := os.Lstat(filepath.Join(top, ".git")); err == nil {
			rel, err := filepath.Rel(top, abs)
			if err != nil || rel == "." {
				return nil, ""
			}
			return os.DirFS(top), filepath.ToSlash(rel)
		}
		parent := filepath.Dir(top)
		if parent == top {
			return nil, ""
		}
		top = parent
	}
}
