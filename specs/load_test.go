package specs

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestValidManifests loads the bundled examples and the shared corpus of
// valid manifests (testdata/manifests/valid at the top level) as one
// repository each.
func TestValidManifests(t *testing.T) {
	for _, tc := range []struct {
		dir   string
		count int
	}{
		{"../examples/seed", 1},
		{"../examples/site", 9},
		{"../examples/overlays", 6},
		{corpusValid, 31},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			state, err := Load(os.DirFS(tc.dir), ".", Options{})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if state.Len() != tc.count {
				for _, o := range state.Objects {
					t.Log(o.Key())
				}
				t.Fatalf("loaded %d objects, want %d", state.Len(), tc.count)
			}
			for _, o := range state.Objects {
				if !strings.HasPrefix(o.Hash, "sha256:") || len(o.Hash) != len("sha256:")+64 {
					t.Errorf("%s: bad hash %q", o.Key(), o.Hash)
				}
				if state.Get(o.Key()) != o {
					t.Errorf("%s: Get does not return the object", o.Key())
				}
			}
		})
	}
}

// TestSeedExample checks the seed Deployment decodes to the right values.
func TestSeedExample(t *testing.T) {
	state, err := Load(os.DirFS("../examples/seed"), ".", Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := state.Get(Key{Kind: KindDeployment, Namespace: "default", Name: "nginx-deployment"})
	if o == nil {
		t.Fatal("seed Deployment missing")
	}
	d := o.Obj.(*appsv1.Deployment)
	if *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.7.9" ||
		d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 80 {
		t.Errorf("decoded seed wrong: %+v", d.Spec)
	}
	if o.Pos.String() != "nginx-deployment.yaml:1:1" {
		t.Errorf("position %s", o.Pos)
	}
	if got := d.Spec.Template.Spec.RestartPolicy; got != corev1.RestartPolicyAlways {
		t.Errorf("restartPolicy default %q", got)
	}
}

// TestIgnoreAndFileSelection covers .kelpieignore, dot paths, extensions and
// single-file roots.
func TestIgnoreAndFileSelection(t *testing.T) {
	cm := func(name string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\n")}
	}
	fsys := fstest.MapFS{
		".kelpieignore":           {Data: []byte("# comment\nscratch/\n*.draft.yaml\n!keep.draft.yaml\n")},
		"a.yaml":                  cm("a"),
		"b.yml":                   cm("b"),
		"notes.txt":               {Data: []byte("not yaml: [")},
		"x.draft.yaml":            {Data: []byte("broken: [")},
		"keep.draft.yaml":         cm("keep"),
		"scratch/bad.yaml":        {Data: []byte("broken: [")},
		".github/workflow.yaml":   {Data: []byte("on: push")},
		".hidden.yaml":            {Data: []byte("broken: [")},
		"sub/.kelpieignore":       {Data: []byte("local.yaml\n")},
		"sub/local.yaml":          {Data: []byte("broken: [")},
		"sub/deeper/local.yaml":   {Data: []byte("broken: [")},
		"sub/c.yaml":              cm("c"),
		"other/local.yaml":        cm("other-local"),
		"other/nested/scratch/ok": {Data: []byte("ignored: not yaml")},
	}
	state, err := Load(fsys, ".", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range state.Objects {
		names = append(names, o.Name)
	}
	if got, want := strings.Join(names, ","), "a,b,c,keep,other-local"; got != want {
		t.Errorf("loaded %s, want %s", got, want)
	}
	// A root naming one file loads it whatever its extension.
	state, err = Load(fstest.MapFS{"one.txt": cm("one")}, "one.txt", Options{})
	if err != nil || state.Len() != 1 {
		t.Errorf("single file: %v %d", err, state.Len())
	}
	// A missing root is an I/O error, not an ErrorList.
	_, err = Load(fsys, "nope", Options{})
	var list ErrorList
	if err == nil || errors.As(err, &list) {
		t.Errorf("missing root: %v", err)
	}
}

// TestLimits checks hostile input is refused with a clear error.
func TestLimits(t *testing.T) {
	big := strings.Repeat("# padding\n", 2000)
	tests := []struct {
		name   string
		data   string
		limits Limits
		want   string
	}{
		{"file too big", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n" + big, Limits{MaxFileBytes: 1024}, "larger than the limit of 1024 bytes"},
		{"too many nodes", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: b, c: d, e: f}\n", Limits{MaxNodes: 5}, "more than 5 YAML nodes"},
		{"too deep", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: b}]}\n", Limits{MaxDepth: 2}, "nested deeper than 2 levels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(fstest.MapFS{"f.yaml": {Data: []byte(tc.data)}}, ".", Options{Limits: tc.limits})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	_, err := Load(fstest.MapFS{"a.yaml": {Data: []byte("a: b")}, "b.yaml": {Data: []byte("a: b")}}, ".", Options{Limits: Limits{MaxFiles: 1}})
	if err == nil || !strings.Contains(err.Error(), "more than 1 manifest files") {
		t.Errorf("max files: %v", err)
	}
}

// TestSourcesShareReferences checks that several sources validate as one
// desired state, with prefixes in positions.
func TestSourcesShareReferences(t *testing.T) {
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: b, envFrom: [{configMapRef: {name: cfg}}]}]\n"
	cfg := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"
	state, err := LoadSources(Options{},
		Source{FS: fstest.MapFS{"pod.yaml": {Data: []byte(pod)}}, Root: ".", Prefix: "apps"},
		Source{FS: fstest.MapFS{"cfg.yaml": {Data: []byte(cfg)}}, Root: ".", Prefix: "config"})
	if err != nil || state.Len() != 2 {
		t.Fatalf("load: %v", err)
	}
	if got := state.Get(Key{Kind: KindPod, Namespace: "default", Name: "p"}).Pos.String(); got != "apps/pod.yaml:1:1" {
		t.Errorf("pos %s", got)
	}
	_, err = LoadSources(Options{}, Source{FS: fstest.MapFS{"pod.yaml": {Data: []byte(pod)}}, Prefix: "apps"})
	if err == nil || !strings.Contains(err.Error(), `apps/pod.yaml:5:68: spec.containers[0].envFrom[0].configMapRef.name: ConfigMap "cfg" not found in namespace default`) {
		t.Errorf("missing reference: %v", err)
	}
}

// TestWorkersDeterministic checks the result does not depend on how many
// files are decoded at once: same objects, hashes and errors in the same order.
func TestWorkersDeterministic(t *testing.T) {
	for _, dir := range []string{corpusInvalid, corpusValid, "../examples/site"} {
		var outcomes []string
		for _, workers := range []int{1, 2, 8} {
			state, err := Load(os.DirFS(dir), ".", Options{Workers: workers})
			var b strings.Builder
			if err != nil {
				b.WriteString(err.Error())
			}
			for _, o := range stateObjects(state) {
				b.WriteString(o.Key().String() + " " + o.Hash + "\n")
			}
			outcomes = append(outcomes, b.String())
		}
		if outcomes[0] == "" || outcomes[0] != outcomes[1] || outcomes[0] != outcomes[2] {
			t.Errorf("%s: outcomes differ with 1, 2 and 8 workers:\n%s\n---\n%s\n---\n%s", dir, outcomes[0], outcomes[1], outcomes[2])
		}
	}
}

// stateObjects returns the objects of a possibly nil state.
func stateObjects(s *DesiredState) []*Object {
	if s == nil {
		return nil
	}
	return s.Objects
}

// TestSymlinkedManifest loads a manifest reached through a symbolic link in
// a work tree, and skips a link to a directory or to nothing.
func TestSymlinkedManifest(t *testing.T) {
	dir := t.TempDir()
	shared := t.TempDir()
	if err := os.WriteFile(shared+"/cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: linked}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"cm.yaml": shared + "/cm.yaml", "dangling.yaml": shared + "/none.yaml", "dir.yaml": shared} {
		if err := os.Symlink(target, dir+"/"+name); err != nil {
			t.Fatal(err)
		}
	}
	state, err := Load(os.DirFS(dir), ".", Options{})
	if err != nil || state.Len() != 1 || state.Objects[0].Name != "linked" {
		t.Fatalf("load through symlink: %v (%d objects)", err, state.Len())
	}
}
