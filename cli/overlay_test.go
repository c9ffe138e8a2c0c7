package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// TestOverlaysThroughGit pushes a base and two overlays with the git CLI to
// a bare repository, as a site repository is kept, and has kelpie diff two
// commits of one overlay there, validate the overlays of the work tree and
// diff the work tree after an edit of the base.
func TestOverlaysThroughGit(t *testing.T) {
	clearEnv(t)
	r := testenv.NewGitRepo(t)
	r.CopyTree("../specs/testdata/kustomize", "site")
	r.Commit("v1: base and overlays")
	r.Write("site/overlays/a/replicas.yaml", strings.Replace(r.Read("site/overlays/a/replicas.yaml"), "replicas: 3", "replicas: 5", 1))
	r.Commit("v2: site a scales to 5")
	bare := testenv.NewBareRepo(t)
	r.Push(bare)

	res := runMain(t, "diff", "HEAD~1", "HEAD", "-o", "json", "--repo", bare, "--path", "site/overlays/a")
	if res.code != 2 {
		t.Fatalf("diff: exit %d, want 2 (changes); stderr:\n%s", res.code, res.stderr)
	}
	var out struct {
		Changes []struct {
			Action, Kind, Name string
			Fields             []struct{ Path string }
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("diff output is not JSON: %v\n%s", err, res.stdout)
	}
	if len(out.Changes) != 1 || out.Changes[0].Kind != "Deployment" || out.Changes[0].Name != "a-web" ||
		len(out.Changes[0].Fields) != 1 || out.Changes[0].Fields[0].Path != "spec.replicas" {
		t.Fatalf("diff changes: %+v", out.Changes)
	}
	// The other overlay did not change.
	if res := runMain(t, "diff", "HEAD~1", "HEAD", "--repo", bare, "--path", "site/overlays/b"); res.code != 0 {
		t.Fatalf("diff of overlay b: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	overlayA := filepath.Join(r.Dir, "site", "overlays", "a")
	res = runMain(t, "--no-color", "validate", overlayA, filepath.Join(r.Dir, "site", "overlays", "b"))
	if res.code != 0 || !strings.Contains(res.stdout, "6 objects valid") {
		t.Fatalf("validate: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// An edit of the base shows in the overlay's diff of the work tree, and
	// a mistake in it is reported at the base's file and line.
	r.Write("site/base/web.yaml", strings.Replace(r.Read("site/base/web.yaml"), "image: nginx:1.25", "image: nginx:1.26", 1))
	res = runMain(t, "diff", "--repo", r.Dir, "--path", "site/overlays/a", "-o", "json")
	if res.code != 2 || !strings.Contains(res.stdout, "spec.template.spec.containers[name=web].image") {
		t.Fatalf("work tree diff: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	r.Write("site/base/web.yaml", strings.Replace(r.Read("site/base/web.yaml"), "  replicas: 1\n", "  replicas: 1\n  replicaz: 2\n", 1))
	res = runMain(t, "validate", overlayA)
	want := filepath.ToSlash(filepath.Join(r.Dir, "site", "base", "web.yaml")) + ":9:3: spec.replicaz: unknown field"
	if res.code != 1 || !strings.Contains(res.stderr, want) {
		t.Fatalf("broken base: exit %d, want %q in stderr:\n%s", res.code, want, res.stderr)
	}
}
