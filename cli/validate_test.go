package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/golden"
)

// goldenFile compares got with a golden file (go test -update rewrites it).
func goldenFile(t *testing.T, path, got string) { t.Helper(); golden.Check(t, path, got) }

// TestValidateExamples accepts the seed and the bundled site, and a file path.
func TestValidateExamples(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"validate", "../examples/seed"},
		{"validate", "../examples/site"},
		{"validate", "../examples/seed/nginx-deployment.yaml"},
		{"validate", "../examples/seed", "../examples/site"},
	} {
		res := runMain(t, args...)
		if res.code != 0 || !strings.Contains(res.stdout, "valid") || res.stderr != "" {
			t.Errorf("%v: exit %d\n%s%s", args, res.code, res.stdout, res.stderr)
		}
	}
	res := runMain(t, "validate", "../examples/site", "-o", "json")
	var out validateResult
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || res.code != 0 {
		t.Fatalf("json: %v exit %d\n%s", err, res.code, res.stdout)
	}
	if !out.Valid || out.Objects != 9 || out.Kinds["Deployment"] != 2 || len(out.Errors) != 0 {
		t.Errorf("result %+v", out)
	}
}

// TestValidateInvalid reports every problem with its position, in text on
// stderr and as objects in JSON, and exits 1.
func TestValidateInvalid(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.MkdirAll(dir+"/apps", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/"+name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("apps/web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: two\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n")
	write("apps/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  affinity: {}\n  containers: [{name: a, image: b}]\n")
	res := runMain(t, "validate", dir)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1", res.code)
	}
	for _, want := range []string{
		dir + "/apps/pod.yaml:5:3: spec.affinity: not supported by kelpie",
		dir + "/apps/web.yaml:5:13: spec.replicas: expected integer, got \"two\"",
		"2 problems found",
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	res = runMain(t, "-o", "json", "validate", dir)
	var out validateResult
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || res.code != 1 {
		t.Fatalf("json: %v exit %d\n%s", err, res.code, res.stdout)
	}
	if out.Valid || len(out.Errors) != 2 || out.Errors[1].Line != 5 || out.Errors[1].Column != 13 || out.Errors[1].Field != "spec.replicas" {
		t.Errorf("result %+v", out)
	}
	res = runMain(t, "validate", dir+"/missing")
	if res.code != 1 || !strings.Contains(res.stderr, "missing") {
		t.Errorf("missing path: exit %d %s", res.code, res.stderr)
	}
}
