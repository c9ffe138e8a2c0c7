package netplan

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kelpie-dev/kelpie/scheduler"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// t0 is the tests' clock origin.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// alive, dead, left and suspect build nodes.
func alive(name string) Node { return Node{Name: name, State: scheduler.NodeAlive} }
func dead(name string, since time.Time) Node {
	return Node{Name: name, State: scheduler.NodeDead, DownSince: since}
}
func left(name string) Node    { return Node{Name: name, State: scheduler.NodeLeft} }
func suspect(name string) Node { return Node{Name: name, State: scheduler.NodeSuspect} }

// pinned builds an alive node pinning a pod subnet.
func pinned(name, subnet string) Node {
	n := alive(name)
	n.PodSubnet = netip.MustParsePrefix(subnet)
	return n
}

// pfx parses a prefix; ip an address.
func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

// svcOpt changes a test Service.
type svcOpt func(*corev1.Service)

// service builds a Service NS/NAME selecting app=NAME with one TCP port 80.
func service(key string, opts ...svcOpt) *corev1.Service {
	ns, name, _ := strings.Cut(key, "/")
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{
		Type:     corev1.ServiceTypeClusterIP,
		Selector: map[string]string{"app": name},
		Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withIP(ip string) svcOpt { return func(s *corev1.Service) { s.Spec.ClusterIP = ip } }
func headless() svcOpt        { return withIP(corev1.ClusterIPNone) }
func withPorts(ps ...corev1.ServicePort) svcOpt {
	return func(s *corev1.Service) { s.Spec.Ports = ps }
}
func nodePort(nps ...int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		for i, np := range nps {
			s.Spec.Ports[i].NodePort = np
		}
	}
}
func affinity(seconds int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		if seconds > 0 {
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &seconds}}
		}
	}
}
func local() svcOpt {
	return func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
}

// pod builds a ready pod NS/NAME with label app=APP on node at ip.
func pod(key, app, node, addr string) Pod {
	ns, name, _ := strings.Cut(key, "/")
	return Pod{Namespace: ns, Name: name, Node: node, IP: ip(addr), Labels: map[string]string{"app": app}, Ready: true}
}

// golden compares got with testdata/NAME, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./netplan -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output (run with -update and review the diff):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	w, g := map[string]int{}, map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		w[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		g[l]++
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if g[l] == 0 {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if w[l] == 0 {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order)"
	}
	return b.String()
}
