package specs

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/golden"
)

// goldenCheck compares got with a golden file (go test -update rewrites it).
func goldenCheck(t *testing.T, path, got string) { t.Helper(); golden.Check(t, path, got) }

// goldenName maps testdata/x/name.yaml to testdata/x/name.golden.
func goldenName(yamlPath string) string {
	return strings.TrimSuffix(yamlPath, filepath.Ext(yamlPath)) + ".golden"
}
