package specs

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// kustomizeTree is a base and two overlays (namePrefix, nameSuffix,
// patches, commonLabels, images, configMapGenerator).
const kustomizeTree = "testdata/kustomize"

// TestKustomizeOverlays builds each overlay and compares it with the same
// objects written out by hand: the same keys and the same hashes (so no
// kustomize annotation is left in the desired state).
func TestKustomizeOverlays(t *testing.T) {
	for _, tc := range []struct{ overlay, expected string }{
		{"overlays/a", "a.yaml"},
		{"overlays/b", "b.yaml"},
	} {
		t.Run(tc.overlay, func(t *testing.T) {
			got, err := Load(os.DirFS(kustomizeTree), tc.overlay, Options{})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			want, err := Load(os.DirFS("testdata/kustomize-expected"), tc.expected, Options{})
			if err != nil {
				t.Fatalf("load expected: %v", err)
			}
			if got.Len() != want.Len() {
				t.Fatalf("built %v, want %v", stateKeys(got), stateKeys(want))
			}
			for _, w := range want.Objects {
				g := got.Get(w.Key())
				if g == nil {
					t.Errorf("%s not built; built %v", w.Key(), stateKeys(got))
					continue
				}
				if g.Hash != w.Hash {
					t.Errorf("%s: hash %s, want %s (the objects differ)", w.Key(), g.Hash, w.Hash)
				}
			}
		})
	}
}

// stateKeys lists a state's keys.
func stateKeys(s *DesiredState) []string {
	var out []string
	for _, o := range s.Objects {
		out = append(out, o.Key().String())
	}
	return out
}

// TestKustomizePositions checks that objects and errors point at the files
// the objects came from.
func TestKustomizePositions(t *testing.T) {
	state, err := Load(os.DirFS(kustomizeTree), "overlays/a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range state.Objects {
		want := map[string]string{KindDeployment: "base/web.yaml:1:1", KindService: "base/service.yaml:1:1", KindConfigMap: "overlays/a/kustomization.yaml:10:3"}[o.Kind]
		if o.Pos.String() != want {
			t.Errorf("%s at %s, want %s", o.Key(), o.Pos, want)
		}
	}
}

// overlayTree is the kustomize test tree in memory, with edits.
func overlayTree(t *testing.T, edits map[string]string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(kustomizeTree), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(kustomizeTree + "/" + p)
		m[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range edits {
		m[p] = &fstest.MapFile{Data: []byte(data)}
	}
	return m
}

func TestKustomizeErrors(t *testing.T) {
	base, err := os.ReadFile(kustomizeTree + "/base/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		overlay string
		edits   map[string]string
		want    []string
	}{
		{
			name:    "unknown field in the base",
			overlay: "overlays/a",
			edits:   map[string]string{"base/web.yaml": strings.Replace(string(base), "  replicas: 1\n", "  replicas: 1\n  replicaz: 2\n", 1)},
			want:    []string{"base/web.yaml:9:3: spec.replicaz: "},
		},
		{
			name:    "invalid value in the base, patched by the overlay",
			overlay: "overlays/b",
			edits:   map[string]string{"base/web.yaml": strings.Replace(string(base), "containerPort: 80", "containerPort: 99999", 1)},
			want:    []string{"base/web.yaml:24:26: spec.template.spec.containers[0].ports[0].containerPort: "},
		},
		{
			name:    "validation error of a generated object",
			overlay: "overlays/a",
			edits:   map[string]string{"overlays/a/kustomization.yaml": "resources:\n- ../../base\nconfigMapGenerator:\n- name: settings\n  literals:\n  - bad key=1\n"},
			want:    []string{"overlays/a/kustomization.yaml:4:3: data"},
		},
		{
			name:    "remote base",
			overlay: "overlays/a",
			edits:   map[string]string{"overlays/a/kustomization.yaml": "resources:\n- ../../base\n- https://github.com/example/site//base?ref=main\n"},
			want:    []string{`overlays/a/kustomization.yaml:3:3: resources[1]: "https://github.com/example/site//base?ref=main" is remote`},
		},
		{
			name:    "kustomize's own error",
			overlay: "overlays/a",
			edits:   map[string]string{"overlays/a/kustomization.yaml": "resources:\n- ../../base\n- missing.yaml\n"},
			want:    []string{"overlays/a/kustomization.yaml:3: kustomize: "},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(overlayTree(t, tc.edits), tc.overlay, Options{})
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v, want an ErrorList", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(list.Error(), w) {
					t.Errorf("errors:\n%v\nwant one starting %q", list, w)
				}
			}
		})
	}
}

// TestKustomizeWalk checks which directories are built: a directory with a
// kustomization stands for everything under it; other files load raw.
func TestKustomizeWalk(t *testing.T) {
	cm := func(name string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata: {a: b}\n")}
	}
	fsys := fstest.MapFS{
		"raw/one.yaml":                   cm("raw"),
		"app/kustomization.yml":          {Data: []byte("resources:\n- base\nnamePrefix: app-\n")},
		"app/base/kustomization.yaml":    {Data: []byte("resources:\n- cm.yaml\n")},
		"app/base/cm.yaml":               cm("base"),
		"app/unused.yaml":                {Data: []byte("not: a manifest\n")},
		"app/base/extra/also-unused.yml": {Data: []byte("kind: Nonsense\n")},
	}
	state, err := Load(fsys, ".", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(stateKeys(state), " "); got != "ConfigMap/default/app-base ConfigMap/default/raw" {
		t.Errorf("loaded %s", got)
	}
	// The base alone, when named, is built alone.
	state, err = Load(fsys, "app/base", Options{})
	if err != nil || state.Len() != 1 || state.Objects[0].Name != "base" {
		t.Errorf("base alone: %v, %v", state, err)
	}
	// A kustomization file named as the root builds its directory.
	state, err = Load(fsys, "app/base/kustomization.yaml", Options{})
	if err != nil || state.Len() != 1 || state.Objects[0].Name != "base" {
		t.Errorf("kustomization file as the root: %v, %v", state, err)
	}
	// A base beside its overlays is loaded only through them.
	state, err = Load(os.DirFS(kustomizeTree), ".", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(stateKeys(state), " "); got != "ConfigMap/default/a-settings-5ddm7fdfh7 ConfigMap/default/settings-b Deployment/default/a-web Deployment/default/web-b Service/default/a-web Service/default/web-b" {
		t.Errorf("base and overlays side by side: loaded %s", got)
	}
	// Two kustomization files in one directory are an error.
	fsys["app/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources: []\n")}
	if _, err := Load(fsys, ".", Options{}); err == nil || !strings.Contains(err.Error(), "keep one kustomization file") {
		t.Errorf("two kustomizations: err = %v", err)
	}
}

// TestKustomizeLimits checks the loader's limits bound what kustomize reads
// and builds.
func TestKustomizeLimits(t *testing.T) {
	if _, err := Load(os.DirFS(kustomizeTree), "overlays/a", Options{Limits: Limits{MaxFileBytes: 200}}); err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("size: err = %v", err)
	}
	if _, err := Load(os.DirFS(kustomizeTree), "overlays/a", Options{Limits: Limits{MaxFiles: 2}}); err == nil || !strings.Contains(err.Error(), "more than 2") {
		t.Errorf("count: err = %v", err)
	}
}

// TestKustomizeRepo loads an overlay as its own tree inside a wider
// repository, as the CLI does for a path in a git work tree: its base is
// reached through Repo and named from the path the user typed.
func TestKustomizeRepo(t *testing.T) {
	repo := os.DirFS(kustomizeTree)
	sub, err := fs.Sub(repo, "overlays/a")
	if err != nil {
		t.Fatal(err)
	}
	state, err := LoadSources(Options{}, Source{FS: sub, Root: ".", Prefix: "site/overlays/a", Repo: repo, RepoDir: "overlays/a"})
	if err != nil {
		t.Fatal(err)
	}
	if o := state.Get(Key{Kind: KindDeployment, Namespace: DefaultNamespace, Name: "a-web"}); o == nil || o.Pos.String() != "site/base/web.yaml:1:1" {
		t.Fatalf("Deployment: %+v", o)
	}
	// Without Repo the base is out of reach.
	_, err = LoadSources(Options{}, Source{FS: sub, Root: ".", Prefix: "site/overlays/a"})
	if err == nil || !strings.Contains(err.Error(), "site/overlays/a/kustomization.yaml") || !strings.Contains(err.Error(), "outside the repository") {
		t.Fatalf("err = %v", err)
	}
}
