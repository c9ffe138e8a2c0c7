package reconciler

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/specs"
)

// now is the injected time of the plan tests.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// load loads manifests given as file name → YAML text.
func load(t testing.TB, files map[string]string) *specs.DesiredState {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	state, err := specs.Load(fsys, ".", specs.Options{})
	if err != nil {
		t.Fatalf("load manifests: %v", err)
	}
	return state
}

// loadText loads one manifest file.
func loadText(t testing.TB, text string) *specs.DesiredState {
	t.Helper()
	return load(t, map[string]string{"m.yaml": text})
}

// expandText loads one manifest file and expands it for host "node1".
func expandText(t testing.TB, text string) (Desired, []Notice) {
	t.Helper()
	return Expand(loadText(t, text), Host{Name: "node1"})
}

// podNames lists "namespace/name" of pods.
func podNames(pods []Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, JoinName(p.Namespace, p.Name))
	}
	return out
}

// noticeStrings formats notices.
func noticeStrings(ns []Notice) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.String())
	}
	return out
}

// findPod returns the desired pod namespace/name.
func findPod(t testing.TB, d Desired, key string) *Pod {
	t.Helper()
	for i := range d.Pods {
		if JoinName(d.Pods[i].Namespace, d.Pods[i].Name) == key {
			return &d.Pods[i]
		}
	}
	t.Fatalf("no pod %s in %v", key, podNames(d.Pods))
	return nil
}

// actionStrings formats actions, one a line.
func actionStrings(as []Action) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// deployment is a Deployment manifest of one busybox container named
// main, extra appended after it (see testenv.Container.Extra).
func deployment(name string, replicas int, extra string) string {
	return testenv.Deployment{Name: name, Replicas: replicas, Container: testenv.Container{Extra: extra}}.YAML()
}

// itoa formats a small integer.
func itoa(i int) string {
	if i < 0 {
		return "-" + itoa(-i)
	}
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// sprintf is fmt.Sprintf.
func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
