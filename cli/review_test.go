package cli

// Regression tests from a review of the manifest model: each describes a
// problem found (and since fixed) that it guards against.

import (
	"os"
	"strings"
	"testing"
)

// A --path that exists on neither side (a typo, or a path given relative to
// a --repo subdirectory instead of the repository root) loads two empty
// states, so `kelpie diff` prints "No changes" and exits 0: a CI job that
// gates on exit 2 silently never sees a change. A path missing on one side
// is an empty state by design; missing on both it should be an error.
// (TestDiffErrors' last assertion encodes the current behaviour.)
func TestReviewDiffPathMissingOnBothSides(t *testing.T) {
	clearEnv(t)
	r, _, _ := siteRepo(t)
	for _, args := range [][]string{
		{"diff", "--repo", r.Dir, "--path", "sitee"},
		{"diff", "--repo", r.Dir + "/site", "--path", "apps"},
	} {
		res := runMain(t, args...)
		if res.code != 1 || !strings.Contains(res.stderr, "--path") && !strings.Contains(res.stderr, "not found") && !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 saying the path exists at neither side", args[1:], res.code, res.stdout, res.stderr)
		}
	}
}

// Overlapping PATHs (a directory and a file inside it) load the same file
// twice, and validate reports each object as a duplicate of itself:
// "a.yaml:3:18: metadata.name: duplicate ConfigMap/default/a: also defined
// at a.yaml:1:1".
func TestReviewValidateOverlappingPaths(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/a.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runMain(t, "validate", dir, dir+"/a.yaml")
	if res.code != 0 {
		t.Errorf("exit %d; one file named twice is not a duplicate object:\n%s", res.code, res.stderr)
	}
}
