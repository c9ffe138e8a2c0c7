package reconciler

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// hashManifests is a site where pods use a ConfigMap and a Secret in
// different ways, and one uses neither.
var hashManifests = map[string]string{
	"config.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: shared}
data: {greeting: hello, extra: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
data: {x: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: one}
---
apiVersion: kelpie.dev/v1alpha1
kind: Network
metadata: {name: lan}
spec: {type: bridge, subnet: 10.9.0.0/24}
`,
	"env.yaml": deployment("by-env", 2, `          env:
            - name: G
              valueFrom: {configMapKeyRef: {name: shared, key: greeting}}
`),
	"envfrom.yaml": deployment("by-envfrom", 1, `          envFrom: [{configMapRef: {name: shared}}]
`),
	"volume.yaml": deployment("by-volume", 1, `          volumeMounts: [{name: c, mountPath: /c}]
      volumes: [{name: c, configMap: {name: shared, items: [{key: greeting, path: g}]}}]
`),
	"secret.yaml": deployment("by-secret", 1, `          env:
            - name: P
              valueFrom: {secretKeyRef: {name: creds, key: password}}
`),
	"optional.yaml": deployment("by-optional", 1, `          envFrom: [{configMapRef: {name: later, optional: true}}]
`),
	"network.yaml": strings.Replace(deployment("by-network", 1, ""), "      labels: {app: by-network}",
		"      labels: {app: by-network}\n      annotations: {kelpie.dev/networks: lan}", 1),
	"none.yaml": deployment("independent", 1, `          env: [{name: G, value: hello}]
`),
}

// hashes expands files and returns each pod's hash by name.
func hashes(t *testing.T, files map[string]string) map[string]string {
	t.Helper()
	d, notices := Expand(load(t, files), Host{Name: "n1"})
	if len(notices) > 0 {
		t.Fatalf("notices: %q", noticeStrings(notices))
	}
	out := map[string]string{}
	for _, p := range d.Pods {
		out[p.Name] = p.Hash
	}
	return out
}

// changedPods lists the pods whose hash differs between two expansions
// (and those only one of them has).
func changedPods(before, after map[string]string) []string {
	var out []string
	for name, h := range after {
		if before[name] != h {
			out = append(out, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestSpecHash checks that the spec hash changes for exactly the pods a
// change concerns: a ConfigMap or Secret they use (through env, envFrom or
// a volume), a Network they join, their template; and never for the
// replica count or the manifests' formatting.
func TestSpecHash(t *testing.T) {
	base := hashes(t, hashManifests)
	edit := func(file, old, new string) map[string]string {
		files := maps.Clone(hashManifests)
		if !strings.Contains(files[file], old) {
			t.Fatalf("%s does not contain %q", file, old)
		}
		files[file] = strings.Replace(files[file], old, new, 1)
		return files
	}
	add := func(file, text string) map[string]string {
		files := maps.Clone(hashManifests)
		files[file] = text
		return files
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"nothing", hashManifests, nil},
		{"configmap key used by all of them", edit("config.yaml", "greeting: hello", "greeting: hi"),
			[]string{"by-env-0", "by-env-1", "by-envfrom-0", "by-volume-0"}},
		{"configmap key no one reads individually", edit("config.yaml", `extra: "1"`, `extra: "2"`),
			[]string{"by-env-0", "by-env-1", "by-envfrom-0", "by-volume-0"}},
		{"unused configmap", edit("config.yaml", `data: {x: "1"}`, `data: {x: "2"}`), nil},
		{"secret", edit("config.yaml", "password: one", "password: two"), []string{"by-secret-0"}},
		{"optional configmap appears", add("later.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later}\ndata: {a: b}\n"),
			[]string{"by-optional-0"}},
		{"network spec", edit("config.yaml", "subnet: 10.9.0.0/24", "subnet: 10.9.1.0/24"), []string{"by-network-0"}},
		{"template", edit("none.yaml", "value: hello", "value: bye"), []string{"independent-0"}},
		{"replicas up keeps existing hashes", edit("env.yaml", "replicas: 2", "replicas: 5"), []string{"by-env-2", "by-env-3", "by-env-4"}},
		{"replicas down keeps remaining hashes", edit("env.yaml", "replicas: 2", "replicas: 1"), []string{"by-env-1"}},
		{"key order and formatting", edit("config.yaml", "data: {greeting: hello, extra: \"1\"}", "data:\n  extra: '1'   # comment\n  greeting: \"hello\""), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := changedPods(base, hashes(t, tt.files)); !slices.Equal(got, tt.want) {
				t.Errorf("changed pods %q, want %q", got, tt.want)
			}
		})
	}
}

// TestShortHash checks the abbreviation used in reasons.
func TestShortHash(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "(none)",
		"sha256:0123456789abcdef":    "sha256:0123456789ab",
		"0123456789abcdef0123456789": "0123456789ab",
		"sha256:abc":                 "sha256:abc",
	} {
		if got := shortHash(in); got != want {
			t.Errorf("shortHash(%q) = %q, want %q", in, got, want)
		}
	}
}
