package specs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The repository's shared manifest corpus (testdata/manifests at the top
// level): examples that must validate, one file a concern, and invalid
// cases NAME.yaml, each with NAME.err, the exact error Load gives.
const (
	corpusValid   = "../testdata/manifests/valid"
	corpusInvalid = "../testdata/manifests/invalid"
)

// corpusFiles lists the corpus's YAML files in dir, failing on none.
func corpusFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	return files
}

// TestCorpusValid loads every valid example on its own, as a repository of
// one file: no problem, at least one object, every object named by its file.
// (TestValidManifests loads them all as one repository.)
func TestCorpusValid(t *testing.T) {
	for _, file := range corpusFiles(t, corpusValid) {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			state, err := Load(os.DirFS(corpusValid), name, Options{})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if state.Len() == 0 {
				t.Fatal("no objects")
			}
			for _, o := range state.Objects {
				if o.Pos.File != name {
					t.Errorf("%s: names file %q, want %q", o.Key(), o.Pos.File, name)
				}
			}
		})
	}
}

// TestCorpusInvalid loads every invalid case and compares the whole error
// (positions, field paths, messages) with its golden NAME.err; `go test
// ./specs -update` rewrites them for review in the diff.
func TestCorpusInvalid(t *testing.T) {
	for _, file := range corpusFiles(t, corpusInvalid) {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			state, err := Load(os.DirFS(corpusInvalid), name, Options{})
			if err == nil {
				t.Fatalf("loaded %d objects; want errors", state.Len())
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList: %v", err, err)
			}
			for _, e := range list {
				if e.Pos.File != name {
					t.Errorf("error names file %q, want %q", e.Pos.File, name)
				}
			}
			goldenCheck(t, strings.TrimSuffix(file, ".yaml")+".err", err.Error()+"\n")
		})
	}
}
