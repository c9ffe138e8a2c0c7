package specs

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestDecodeAsAPIServer checks the cases where the decoder used to read a
// document differently from the API server (found by
// FuzzDecodeMatchesJSON): numbers in quantities, merge lists and
// non-string map keys.
func TestDecodeAsAPIServer(t *testing.T) {
	s := reviewMustLoad(t, `apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {<<: [{a: first}, {a: second, b: second}]}
spec:
  containers:
  - name: c
    image: busybox
    resources: {limits: {cpu: 0777, memory: 0x10}}
`)
	pod := s.Objects[0].Obj.(*corev1.Pod)
	if got := pod.Labels; got["a"] != "first" || got["b"] != "second" {
		t.Errorf("labels %v, want a=first (earlier merge wins), b=second", got)
	}
	lim := pod.Spec.Containers[0].Resources.Limits
	if cpu, mem := lim[corev1.ResourceCPU], lim[corev1.ResourceMemory]; cpu.Value() != 511 || mem.Value() != 16 {
		t.Errorf("cpu %s memory %s, want 511 and 16", cpu.String(), mem.String())
	}
	_, err := reviewLoad(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {1: x}}\ndata:\n  0x10: y\n  ? [k]\n  : z\n")
	want := `f.yaml:3:30: metadata.labels[1]: keys must be strings, got integer 1 (quote it to make it a string)
f.yaml:5:3: data[0x10]: keys must be strings, got integer 0x10 (quote it to make it a string)
f.yaml:6:5: data[]: keys must be strings, got list`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}
