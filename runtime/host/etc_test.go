package host

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/reconciler"
)

func TestPodResolvConf(t *testing.T) {
	const upstream = "nameserver 192.0.2.53\nnameserver 127.0.0.1\n"
	for _, tc := range []struct {
		name, host  string
		hostNetwork bool
		want        []string // lines, comments left out
	}{
		{"plain", "search example.org\nnameserver 10.0.0.2\noptions ndots:2\n", false,
			[]string{"search example.org", "options ndots:2", "nameserver 10.0.0.2"}},
		{"loopback dropped", "nameserver 127.0.0.53\nnameserver 10.0.0.2\n", false, []string{"nameserver 10.0.0.2"}},
		{"systemd-resolved", "nameserver 127.0.0.53\nsearch lan\n", false, []string{"search lan", "nameserver 192.0.2.53"}},
		{"ipv6 loopback", "nameserver ::1\n", false, []string{"nameserver 192.0.2.53"}},
		{"host network keeps loopback", "nameserver 127.0.0.53\n", true, []string{"nameserver 127.0.0.53"}},
		{"empty", "", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, l := range strings.Split(string(podResolvConf([]byte(tc.host), []byte(upstream), tc.hostNetwork)), "\n") {
				if l != "" && !strings.HasPrefix(l, "#") {
					got = append(got, l)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodHosts(t *testing.T) {
	h := string(podHosts("web-0", "10.244.0.7"))
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "::1\tlocalhost ip6-localhost ip6-loopback\n", "10.244.0.7\tweb-0\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("hosts lacks %q:\n%s", want, h)
		}
	}
	if h := string(podHosts("web-0", "")); strings.Contains(h, "web-0") {
		t.Errorf("hosts names the pod without an IP:\n%s", h)
	}
}

func TestWriteEtcFileKeepsSameContent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	if err := writeEtcFile(p, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(p)
	if err := writeEtcFile(p, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(p)
	if !os.SameFile(before, after) {
		t.Error("unchanged content was rewritten (a new inode hides it from running containers)")
	}
	if err := writeEtcFile(p, []byte("b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "b\n" {
		t.Errorf("content = %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// TestPodResolvClusterDNS: with the cluster DNS a pod with its own network
// namespace asks the gateway with the Kubernetes search path, then the
// host's search domains; a hostNetwork pod keeps the host's file, and
// without the cluster DNS the file is derived from the host's.
func TestPodResolvClusterDNS(t *testing.T) {
	host := []byte("search example.org\nnameserver 192.0.2.53\n")
	cdns := clusterDNS{nameserver: netip.MustParseAddr("10.244.3.1"), domain: "cluster.local"}
	for _, tc := range []struct {
		name string
		pod  reconciler.Pod
		cdns clusterDNS
		want []string
		not  []string
	}{
		{"cluster DNS", reconciler.Pod{Namespace: "shop"}, cdns,
			[]string{"nameserver 10.244.3.1", "search shop.svc.cluster.local svc.cluster.local cluster.local example.org", "options ndots:5"},
			[]string{"192.0.2.53"}},
		{"host network", reconciler.Pod{Namespace: "shop", HostNetwork: true}, cdns,
			[]string{"nameserver 192.0.2.53"}, []string{"10.244.3.1", "ndots"}},
		{"no cluster DNS", reconciler.Pod{Namespace: "shop"}, clusterDNS{},
			[]string{"nameserver 192.0.2.53", "search example.org"}, []string{"10.244.3.1", "ndots"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(podResolv(host, nil, &tc.pod, tc.cdns))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("resolv.conf lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("resolv.conf has %q:\n%s", n, got)
				}
			}
		})
	}
}
