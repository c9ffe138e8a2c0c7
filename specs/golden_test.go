package specs

import (
	"testing"

	"github.com/kelpie-dev/kelpie/internal/golden"
)

// goldenCheck compares got with a golden file (go test -update rewrites it).
func goldenCheck(t *testing.T, path, got string) { t.Helper(); golden.Check(t, path, got) }
