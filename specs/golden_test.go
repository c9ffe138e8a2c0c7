package specs

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update regenerates golden files: go test ./specs -update
var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with the golden file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output:\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// goldenName maps testdata/x/name.yaml to testdata/x/name.golden.
func goldenName(yamlPath string) string {
	return strings.TrimSuffix(yamlPath, filepath.Ext(yamlPath)) + ".golden"
}
