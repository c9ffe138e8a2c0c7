package overlay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// opts are generous limits for tests.
var opts = Options{MaxFileBytes: 1 << 20, MaxFiles: 1000}

// site is a base and two overlays.
func site() fstest.MapFS {
	return fstest.MapFS{
		"base/kustomization.yaml": {Data: []byte("resources:\n- deploy.yaml\n- svc.yaml\n")},
		"base/deploy.yaml": {Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
`)},
		"base/svc.yaml": {Data: []byte(`apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`)},
		"overlays/prod/kustomization.yaml": {Data: []byte(`resources:
- ../../base
namePrefix: prod-
commonLabels:
  env: prod
patches:
- path: replicas.yaml
configMapGenerator:
- name: settings
  literals:
  - LEVEL=info
`)},
		"overlays/prod/replicas.yaml": {Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
`)},
		"overlays/dev/kustomization.yaml": {Data: []byte(`resources:
- ../../base
namespace: dev
images:
- name: nginx
  newTag: "1.27"
`)},
	}
}

func TestBuildOverlay(t *testing.T) {
	res, err := Build(site(), "overlays/prod", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Uses) != 1 || res.Uses[0] != "base" {
		t.Errorf("uses %v, want [base]", res.Uses)
	}
	docs := res.Docs
	got := map[string]Document{}
	for _, d := range docs {
		got[d.Kind+"/"+d.Name] = d
		if strings.Contains(string(d.Data), "config.kubernetes.io") {
			t.Errorf("%s/%s keeps kustomize's annotations:\n%s", d.Kind, d.Name, d.Data)
		}
	}
	if len(got) != 3 {
		t.Fatalf("built %d objects, want 3: %v", len(docs), got)
	}
	dep, ok := got["Deployment/prod-web"]
	if !ok || dep.Origin != "base/deploy.yaml" || dep.Generated {
		t.Fatalf("Deployment: %+v", dep)
	}
	for _, want := range []string{"replicas: 3", "env: prod"} {
		if !strings.Contains(string(dep.Data), want) {
			t.Errorf("Deployment has no %q:\n%s", want, dep.Data)
		}
	}
	if strings.Contains(string(dep.Data), "annotations") {
		t.Errorf("Deployment has annotations left:\n%s", dep.Data)
	}
	var cm Document
	for k, d := range got {
		if strings.HasPrefix(k, "ConfigMap/prod-settings-") {
			cm = d
		}
	}
	if cm.Origin != "overlays/prod/kustomization.yaml" || !cm.Generated {
		t.Errorf("ConfigMap: %+v", cm)
	}
	if svc := got["Service/prod-web"]; svc.Origin != "base/svc.yaml" {
		t.Errorf("Service: %+v", svc)
	}
}

func TestBuildRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, kust, want string
		line             int
	}{
		{"remote git base", "resources:\n- ./local\n- github.com/example/site//base?ref=v1\n", `resources[1]: "github.com/example/site//base?ref=v1" is remote`, 3},
		{"https resource", "namePrefix: a-\nresources:\n- https://example.com/app.yaml\n", "is remote", 3},
		{"ssh base", "bases:\n- git@example.com:org/repo.git\n", "is remote", 2},
		{"remote patch", "patches:\n- path: https://example.com/p.yaml\n", "patches[0].path", 2},
		{"remote generator file", "configMapGenerator:\n- name: x\n  files:\n  - k=https://example.com/f\n", "configMapGenerator[0].files[0]", 4},
		{"helm", "helmCharts:\n- name: x\n", "helm charts are not supported", 1},
		{"plugin", "resources: []\ntransformers:\n- t.yaml\n", "plugins are off", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"app/kustomization.yaml": {Data: []byte(tc.kust)}, "app/local/kustomization.yaml": {Data: []byte("resources: []\n")}}
			_, err := Build(fsys, "app", opts)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.File != "app/kustomization.yaml" || e.Line != tc.line || !strings.Contains(e.Message, tc.want) {
				t.Errorf("err = %v, want app/kustomization.yaml:%d: ...%s...", e, tc.line, tc.want)
			}
		})
	}
}

func TestBuildRefusesRemoteInBase(t *testing.T) {
	fsys := site()
	fsys["base/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- deploy.yaml\n- https://example.com/x.yaml\n")}
	_, err := Build(fsys, "overlays/prod", opts)
	if err == nil || !strings.HasPrefix(err.Error(), "base/kustomization.yaml:3:3: resources[1]") {
		t.Fatalf("err = %v", err)
	}
}

func TestBuildStaysInside(t *testing.T) {
	t.Run("dotdot above the root", func(t *testing.T) {
		fsys := fstest.MapFS{"app/kustomization.yaml": {Data: []byte("resources:\n- ../../elsewhere\n")}}
		_, err := Build(fsys, "app", opts)
		if err == nil || err.Error() != `app/kustomization.yaml:2: "../../elsewhere" leads outside the repository; refused` {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("symlink out", func(t *testing.T) {
		outside := t.TempDir()
		if err := os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		repo := t.TempDir()
		if err := os.MkdirAll(filepath.Join(repo, "app"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, "app", "kustomization.yaml"), []byte("resources:\n- link.yaml\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(repo, "app", "link.yaml")); err != nil {
			t.Fatal(err)
		}
		_, err := Build(os.DirFS(repo), "app", opts)
		if err == nil || !strings.Contains(err.Error(), "outside the repository") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("symlink inside", func(t *testing.T) {
		repo := t.TempDir()
		for name, data := range map[string]string{
			"app/kustomization.yaml":    "resources:\n- link\n",
			"shared/kustomization.yaml": "resources:\n- cm.yaml\n",
			"shared/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n",
		} {
			p := filepath.Join(repo, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink("../shared", filepath.Join(repo, "app", "link")); err != nil {
			t.Fatal(err)
		}
		res, err := Build(os.DirFS(repo), "app", opts)
		if err != nil || len(res.Docs) != 1 || res.Docs[0].Name != "shared" || res.Docs[0].Origin != "shared/cm.yaml" {
			t.Fatalf("result = %+v, err = %v", res, err)
		}
	})
}

func TestBuildLimits(t *testing.T) {
	_, err := Build(site(), "overlays/prod", Options{MaxFileBytes: 100, MaxFiles: 1000})
	if err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("size: err = %v", err)
	}
	_, err = Build(site(), "overlays/prod", Options{MaxFileBytes: 1 << 20, MaxFiles: 3})
	if err == nil || !strings.Contains(err.Error(), "more than 3") {
		t.Errorf("count: err = %v", err)
	}
}

func TestBuildKustomizeError(t *testing.T) {
	fsys := fstest.MapFS{"app/kustomization.yaml": {Data: []byte("namePrefix: a-\nresources:\n- missing.yaml\n")}}
	_, err := Build(fsys, "app", opts)
	var e *Error
	if !errors.As(err, &e) || e.File != "app/kustomization.yaml" || e.Line != 3 || strings.Contains(e.Message, virtualRoot) {
		t.Fatalf("err = %v", err)
	}
}

// TestBuildConcurrent builds from several goroutines (run with -race).
func TestBuildConcurrent(t *testing.T) {
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			dir := []string{"overlays/prod", "overlays/dev"}[i%2]
			_, err := Build(site(), dir, opts)
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
