package specs

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestSkipKinds: kinds skipped by Options.SkipKinds or by skipKinds in the
// manifests' .kelpie.yaml are left out of the desired state and listed,
// with where the skip comes from; a kind with no meaning in kelpie that is
// not skipped is refused with what to do; .kelpie.yaml is strict.
func TestSkipKinds(t *testing.T) {
	files := fstest.MapFS{
		"site/rbac.yaml": {Data: []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web, namespace: shop}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n")},
		"site/cm.yaml":   {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n")},
	}
	if _, err := Load(files, "site", Options{}); err == nil || !strings.Contains(err.Error(), "rbac.yaml:2:7: kind: kind ServiceAccount has no effect in kelpie") {
		t.Fatalf("without skipping: %v", err)
	}
	state, err := Load(files, "site", Options{SkipKinds: []string{"ServiceAccount", "Role"}})
	if err != nil {
		t.Fatal(err)
	}
	if state.Len() != 1 || len(state.Skipped) != 2 {
		t.Fatalf("objects %d, skipped %v; want 1 and 2", state.Len(), state.Skipped)
	}
	if got := state.Skipped[0].String(); got != "ServiceAccount shop/web (site/rbac.yaml:1, --skip-kind)" {
		t.Errorf("skipped[0] = %q", got)
	}

	files["site/.kelpie.yaml"] = &fstest.MapFile{Data: []byte("skipKinds: [Role]\n")}
	state, err = Load(files, "site", Options{SkipKinds: []string{"ServiceAccount"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := state.Skipped[1].String(); got != "Role r (site/rbac.yaml:5, skipKinds in site/.kelpie.yaml)" {
		t.Errorf("skipped[1] = %q", got)
	}

	files["site/.kelpie.yaml"] = &fstest.MapFile{Data: []byte("skipKinds: [Role]\nskipkinds: [Pod]\n")}
	if _, err := Load(files, "site", Options{SkipKinds: []string{"ServiceAccount"}}); err == nil || !strings.Contains(err.Error(), "site/.kelpie.yaml:2:1: skipkinds: unknown setting") {
		t.Errorf("a misspelt setting: %v", err)
	}
}
