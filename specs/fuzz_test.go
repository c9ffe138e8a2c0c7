package specs

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// FuzzLoad feeds arbitrary bytes to the decoder. Seeds are every valid and
// invalid manifest of the shared corpus and testdata; crashers go to testdata/fuzz/FuzzLoad.
// Properties: Load never panics, returns either a state or an ErrorList whose
// entries name the file, and is deterministic.
func FuzzLoad(f *testing.F) {
	addSeeds(f)
	limits := Limits{MaxFileBytes: 1 << 20, MaxNodes: 20_000, MaxDepth: 32}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"f.yaml": {Data: data}}
		s1, err1 := Load(fsys, ".", Options{Limits: limits})
		s2, err2 := Load(fsys, ".", Options{Limits: limits})
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("non-deterministic: %v / %v", err1, err2)
		}
		if err1 != nil {
			list, ok := err1.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error %T %v, want a non-empty ErrorList", err1, err1)
			}
			for _, e := range list {
				if e.Pos.File != "f.yaml" {
					t.Fatalf("error without file: %v", e)
				}
			}
			if err1.Error() != err2.Error() {
				t.Fatalf("non-deterministic errors:\n%v\n%v", err1, err2)
			}
			return
		}
		if s1.Len() != s2.Len() {
			t.Fatalf("loaded %d then %d objects", s1.Len(), s2.Len())
		}
		for i, o := range s1.Objects {
			if o.Hash == "" || o.Hash != s2.Objects[i].Hash {
				t.Fatalf("%s: hash %q vs %q", o.Key(), o.Hash, s2.Objects[i].Hash)
			}
		}
	})
}

// addSeeds adds every valid and invalid manifest under testdata and the
// bundled examples to a fuzz corpus.
func addSeeds(f *testing.F) {
	for _, pattern := range []string{corpusInvalid + "/*.yaml", corpusValid + "/*.yaml", "testdata/diff/*/*.yaml", "../examples/*/*.yaml", "../examples/*/*/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}
