package testenv

import (
	"testing"
	"testing/fstest"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// TestManifestsValidate: every field the builders render survives the real
// loader, with the values given.
func TestManifestsValidate(t *testing.T) {
	c := Container{ContainerName: "httpd", Image: "nginx:1.7.9", Command: `"sleep", "3600"`, Version: "v2",
		Ports: []int{80, 443}, Grace: new(0), NodeSelector: map[string]string{"role": "edge", "disk": "ssd"},
		Extra: "      restartPolicy: Always\n"}
	dep := Deployment{Name: "web", Namespace: "ns", Replicas: 3, Strategy: "  minReadySeconds: 5\n", Container: c}
	pc := c
	pc.Extra = "  restartPolicy: Never\n"
	pod := Pod{Name: "one", Container: pc}
	state, err := specs.Load(fstest.MapFS{
		"dep.yaml": {Data: []byte(dep.YAML())},
		"pod.yaml": {Data: []byte(pod.YAML())},
		"min.yaml": {Data: []byte(Deployment{Name: "min"}.YAML())},
	}, ".", specs.Options{})
	if err != nil {
		t.Fatalf("load:\n%s\n%s\n%v", dep.YAML(), pod.YAML(), err)
	}
	d := state.Get(specs.Key{Kind: "Deployment", Namespace: "ns", Name: "web"}).Obj.(*appsv1.Deployment)
	if *d.Spec.Replicas != 3 || d.Spec.MinReadySeconds != 5 || d.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("deployment spec = %+v", d.Spec)
	}
	checkPod(t, d.Spec.Template.Spec)
	p := state.Get(specs.Key{Kind: "Pod", Namespace: "default", Name: "one"}).Obj.(*corev1.Pod)
	if p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("pod restartPolicy = %q", p.Spec.RestartPolicy)
	}
	checkPod(t, p.Spec)
	m := state.Get(specs.Key{Kind: "Deployment", Namespace: "default", Name: "min"}).Obj.(*appsv1.Deployment)
	if ct := m.Spec.Template.Spec.Containers[0]; ct.Name != "main" || ct.Image != DefaultImage {
		t.Errorf("default container = %s %s", ct.Name, ct.Image)
	}
}

func checkPod(t *testing.T, s corev1.PodSpec) {
	t.Helper()
	ct := s.Containers[0]
	if len(s.Containers) != 1 || ct.Name != "httpd" || ct.Image != "nginx:1.7.9" || len(ct.Command) != 2 ||
		len(ct.Env) != 1 || ct.Env[0].Value != "v2" || len(ct.Ports) != 2 || *s.TerminationGracePeriodSeconds != 0 ||
		s.NodeSelector["role"] != "edge" || s.NodeSelector["disk"] != "ssd" {
		t.Errorf("pod spec = %+v", s)
	}
}
