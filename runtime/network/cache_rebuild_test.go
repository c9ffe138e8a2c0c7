package network

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// testConfList is a conflist of the default network's shape.
const testConfList = `{"cniVersion":"1.0.0","name":"kelpie","plugins":[{"type":"bridge","bridge":"kelpie0","isGateway":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.0.0/24"}]]}}]}`

func TestCheckCacheEntry(t *testing.T) {
	ifc := net.Interface{Name: "eth0", HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	good, err := rebuiltCacheEntry([]byte(testConfList), "kelpie", "ns_web", "ns", "web", "/run/x", ifc,
		&net.IPNet{IP: net.IPv4(10, 244, 0, 7), Mask: net.CIDRMask(24, 32)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		entry string
		want  string // "" for a readable entry, else part of the problem
	}{
		{"rebuilt", string(good), ""},
		{"cut in half", string(good[:len(good)/2]), "not JSON"},
		{"empty", "", "not JSON"},
		{"garbage", "\x00\xff garbage", "not JSON"},
		{"other kind", `{"kind":"v0"}`, "kind"},
		{"another pod's", strings.Replace(string(good), `"ns_web"`, `"ns_api"`, 1), "names kelpie/ns_api/eth0"},
		{"no result", `{"kind":"cniCacheV1","containerId":"ns_web","ifName":"eth0","networkName":"kelpie","config":"e30="}`, "no config or no result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCacheEntry([]byte(tc.entry), "kelpie", "ns_web", "eth0")
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("checkCacheEntry = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("checkCacheEntry = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A rebuilt entry is one libcni lists and reads back: the attachment with
// its config and args, and a result whose sandbox interface has the
// address.
func TestRebuiltCacheEntryReadsBack(t *testing.T) {
	dir := t.TempDir()
	ifc := net.Interface{Name: "eth0", HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	ports := []cniPortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}
	b, err := rebuiltCacheEntry([]byte(testConfList), "kelpie", "ns_web", "ns", "web", "/run/netns/x", ifc,
		&net.IPNet{IP: net.IPv4(10, 244, 0, 7), Mask: net.CIDRMask(24, 32)}, ports)
	if err != nil {
		t.Fatal(err)
	}
	path := cacheEntryPath(dir, "kelpie", "ns_web", "eth0")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(nil, dir, nil)
	atts, err := cni.GetCachedAttachments("ns_web")
	if err != nil || len(atts) != 1 {
		t.Fatalf("GetCachedAttachments = %v, %v; want the rebuilt entry", atts, err)
	}
	a := atts[0]
	if a.Network != "kelpie" || a.IfName != "eth0" || a.NetNS != "/run/netns/x" || string(a.Config) != testConfList || a.CapabilityArgs["portMappings"] == nil {
		t.Errorf("attachment = %+v", a)
	}
	list, err := libcni.ConfListFromBytes(a.Config)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cni.GetNetworkListCachedResult(list, &libcni.RuntimeConf{ContainerID: "ns_web", IfName: "eth0"})
	if err != nil || res == nil {
		t.Fatalf("GetNetworkListCachedResult = %v, %v", res, err)
	}
	if ip := resultIPv4(res, "eth0"); ip != "10.244.0.7" {
		t.Errorf("address of the rebuilt result = %q, want 10.244.0.7", ip)
	}
}

func TestLeasedIPs(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"10.244.0.2":         "ns_web\neth0",
		"10.244.0.3":         "ns_api\neth0",
		"10.244.0.4":         "ns_web\neth1",
		"10.244.0.5":         "ns_old", // host-local before 0.8 wrote the ID alone
		"last_reserved_ip.0": "10.244.0.5",
		"lock":               "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ id, ifName, want string }{
		{"ns_web", "eth0", "[10.244.0.2]"},
		{"ns_web", "eth1", "[10.244.0.4]"},
		{"ns_old", "eth0", "[10.244.0.5]"},
		{"ns_gone", "eth0", "[]"},
	} {
		if got := strings.Join(leasedIPs(dir, tc.id, tc.ifName), " "); "["+got+"]" != tc.want {
			t.Errorf("leasedIPs(%s, %s) = [%s], want %s", tc.id, tc.ifName, got, tc.want)
		}
	}
}

// A cache entry torn while the pod runs: Sandboxes reports the sandbox
// ready with its address, having written the entry anew; Setup reuses it
// (no new lease); Teardown frees the lease.
func TestSandboxesRebuildTornCacheEntry(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web", 80, 18199)
	first := tn.setupPod(t, p)
	for _, e := range []struct{ cniName, ifName string }{{cniDefaultNetwork, "eth0"}, {cniLoopbackNetwork, "lo"}} {
		path := cacheEntryPath(tn.cfg.CNICacheDir, e.cniName, tn.id("web"), e.ifName)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sbs, err := tn.Sandboxes()
	if err != nil {
		t.Fatal(err)
	}
	if sb := sbs[p.Namespace+"/"+p.Name]; !sb.Ready || sb.IP != first.IP {
		t.Errorf("sandbox with a torn cache entry reported as %+v, want ready at %s", sb, first.IP)
	}
	for _, e := range []struct{ cniName, ifName string }{{cniDefaultNetwork, "eth0"}, {cniLoopbackNetwork, "lo"}} {
		b, err := os.ReadFile(cacheEntryPath(tn.cfg.CNICacheDir, e.cniName, tn.id("web"), e.ifName))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkCacheEntry(b, e.cniName, tn.id("web"), e.ifName); err != nil {
			t.Errorf("%s entry after Sandboxes: %v", e.cniName, err)
		}
	}
	second, err := tn.Setup(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if second.IP != first.IP {
		t.Errorf("setup after the rebuild: address %s, want %s", second.IP, first.IP)
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 1 || got[first.IP] != tn.id("web") {
		t.Errorf("leases = %v, want only %s", got, first.IP)
	}
	checkEth0(t, second)
}

// A torn entry whose lease is gone is not rebuilt: the sandbox is not
// ready, and is made again.
func TestSandboxesRefuseTornEntryWithoutLease(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web")
	first := tn.setupPod(t, p)
	path := cacheEntryPath(tn.cfg.CNICacheDir, cniDefaultNetwork, tn.id("web"), "eth0")
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(tn.leaseDir, cniDefaultNetwork, first.IP)); err != nil {
		t.Fatal(err)
	}
	sbs, err := tn.Sandboxes()
	if err != nil {
		t.Fatal(err)
	}
	if sb := sbs[p.Namespace+"/"+p.Name]; sb.Ready {
		t.Errorf("sandbox with a torn entry and no lease reported as %+v, want not ready", sb)
	}
}
