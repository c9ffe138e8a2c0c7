package scheduler

import (
	"testing"
	"testing/fstest"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// now is the injected time of the tests.
var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// podMod changes a pod spec.
type podMod func(*corev1.PodSpec)

// requests sets the first container's cpu and memory requests ("" for none).
func requests(cpu, mem string) podMod {
	return func(s *corev1.PodSpec) {
		r := corev1.ResourceList{}
		if cpu != "" {
			r[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			r[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		s.Containers[0].Resources.Requests = r
	}
}

// selector sets the nodeSelector from "k", "v" pairs.
func selector(kv ...string) podMod {
	return func(s *corev1.PodSpec) {
		s.NodeSelector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			s.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

// claim mounts PersistentVolumeClaim name.
func claim(name string) podMod {
	return func(s *corev1.PodSpec) {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: "v-" + name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name},
		}})
	}
}

// hostPort binds a TCP host port.
func hostPort(port int32) podMod {
	return func(s *corev1.PodSpec) {
		s.Containers[0].Ports = append(s.Containers[0].Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: corev1.ProtocolTCP})
	}
}

// podSpec builds a one-container pod spec.
func podSpec(mods ...podMod) corev1.PodSpec {
	s := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.7.9"}}}
	for _, m := range mods {
		m(&s)
	}
	return s
}

// deploy builds a Deployment object in namespace default.
func deploy(name string, replicas int, mods ...podMod) *specs.Object {
	n := int32(replicas)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       appsv1.DeploymentSpec{Replicas: &n, Template: corev1.PodTemplateSpec{Spec: podSpec(mods...)}},
	}
	return &specs.Object{APIVersion: "apps/v1", Kind: specs.KindDeployment, Namespace: "default", Name: name, Obj: d}
}

// bare builds a Pod object in namespace default.
func bare(name string, mods ...podMod) *specs.Object {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: podSpec(mods...)}
	return &specs.Object{APIVersion: "v1", Kind: specs.KindPod, Namespace: "default", Name: name, Obj: p}
}

// daemonSet builds a DaemonSet object.
func daemonSet(name string, mods ...podMod) *specs.Object {
	d := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: podSpec(mods...)}},
	}
	return &specs.Object{APIVersion: "apps/v1", Kind: specs.KindDaemonSet, Namespace: "default", Name: name, Obj: d}
}

// job builds a Job object.
func job(name string) *specs.Object {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	return &specs.Object{APIVersion: "batch/v1", Kind: specs.KindJob, Namespace: "default", Name: name, Obj: j}
}

// pvc builds a PersistentVolumeClaim object.
func pvc(name string) *specs.Object {
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	return &specs.Object{APIVersion: "v1", Kind: specs.KindPersistentVolumeClaim, Namespace: "default", Name: name, Obj: c}
}

// state builds a desired state of objs (Place sorts them itself).
func state(objs ...*specs.Object) *specs.DesiredState {
	return &specs.DesiredState{Objects: objs}
}

// loadYAML loads one manifest file through specs.Load.
func loadYAML(t testing.TB, text string) *specs.DesiredState {
	t.Helper()
	st, err := specs.Load(fstest.MapFS{"m.yaml": &fstest.MapFile{Data: []byte(text)}}, ".", specs.Options{})
	if err != nil {
		t.Fatalf("load manifests: %v", err)
	}
	return st
}

// nodeMod changes a node.
type nodeMod func(*Node)

// mkNode builds an alive node with no capacity limits.
func mkNode(name string, mods ...nodeMod) Node {
	n := Node{Name: name}
	for _, m := range mods {
		m(&n)
	}
	return n
}

// labels sets labels from "k", "v" pairs.
func labels(kv ...string) nodeMod {
	return func(n *Node) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

// capacity sets cpu millicores and memory (a quantity such as "1Gi").
func capacity(cpuMilli int64, mem string) nodeMod {
	return func(n *Node) {
		n.Capacity.CPUMilli = cpuMilli
		if mem != "" {
			q := resource.MustParse(mem)
			n.Capacity.MemoryBytes = q.Value()
		}
	}
}

// dead marks the node dead for d before now.
func dead(d time.Duration) nodeMod {
	return func(n *Node) { n.State, n.DownSince = NodeDead, now.Add(-d) }
}

// state sets the membership state.
func withState(s NodeState) nodeMod { return func(n *Node) { n.State = s } }

// ineligible marks the node ineligible.
func ineligible(n *Node) { n.Ineligible = true }

// volumes sets the claims the node holds ("default/NAME").
func volumes(claims ...string) nodeMod { return func(n *Node) { n.Volumes = claims } }

// opts are the default options of the tests.
func opts() Options { return Options{Term: 1, Commit: "c1", Now: now} }

// mustPlace places or fails the test.
func mustPlace(t testing.TB, d *specs.DesiredState, nodes []Node, prev *Placement, o Options) (Placement, Report) {
	t.Helper()
	p, r, err := Place(d, nodes, prev, o)
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	return p, r
}

// perNode counts assignments per node.
func perNode(p Placement) map[string]int {
	out := map[string]int{}
	for _, n := range p.Assignments {
		out[n]++
	}
	return out
}

// assignments builds an assignment map from "replica", "node" pairs.
func assignments(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// podSpecT and containerT shorten pod spec modifiers in tables.
type (
	podSpecT   = corev1.PodSpec
	containerT = corev1.Container
)

// initWith is an init container with cpu and memory requests.
func initWith(cpu, mem string) corev1.Container {
	s := podSpec(requests(cpu, mem))
	c := s.Containers[0]
	c.Name = "init"
	return c
}
