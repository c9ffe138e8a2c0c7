package network

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// The tests here put a sandbox in the state an agent killed at some
// instruction leaves, then check that setup or teardown converges from it
// with nothing leaked.

func TestSetupAfterCrashBeforeAdd(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web")
	// Killed after the record and the namespace, before any ADD.
	if err := tn.writeRecord(p.Namespace, p.Name, sandboxRecord{Labels: statedir.Labels()}); err != nil {
		t.Fatal(err)
	}
	if err := netnsCreate(tn.netnsPath(p.Namespace, p.Name)); err != nil {
		t.Fatal(err)
	}
	sbs, err := tn.Sandboxes()
	if err != nil {
		t.Fatal(err)
	}
	if sb, ok := sbs[p.Namespace+"/"+p.Name]; !ok || sb.Ready || sb.IP != "" {
		t.Errorf("half-made sandbox reported as %+v (found %v), want not ready", sb, ok)
	}

	sb := tn.setupPod(t, p)
	if sb.IP == "" || !sb.Ready {
		t.Fatalf("setup after crash = %+v", sb)
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 1 {
		t.Errorf("leases = %v, want one", got)
	}
}

func TestSetupAfterCrashBeforeCacheWrite(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web")
	first := tn.setupPod(t, p)
	// Killed after the plugins' ADD, before libcni wrote its cache: the
	// namespace has eth0 and host-local a lease, but nothing is cached.
	cache := filepath.Join(tn.cfg.CNICacheDir, "results", cniDefaultNetwork+"-"+tn.id("web")+"-eth0")
	if err := os.Remove(cache); err != nil {
		t.Fatalf("remove cache entry: %v", err)
	}
	second, err := tn.Setup(context.Background(), p)
	if err != nil {
		t.Fatalf("setup after crash: %v", err)
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 1 || got[second.IP] != tn.id("web") {
		t.Errorf("leases = %v, want only %s (first setup had %s)", got, second.IP, first.IP)
	}
	checkEth0(t, second)
}

func TestSetupAfterReboot(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web")
	first := tn.setupPod(t, p)
	// A reboot takes the namespace's mount, not the file, the cache or the
	// leases.
	if err := unix.Unmount(first.NetNSPath, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	sbs, err := tn.Sandboxes()
	if err != nil {
		t.Fatal(err)
	}
	if sb := sbs[p.Namespace+"/"+p.Name]; sb.Ready || sb.NetNSPath != "" {
		t.Errorf("sandbox without its namespace reported as %+v, want not ready", sb)
	}
	second, err := tn.Setup(context.Background(), p)
	if err != nil {
		t.Fatalf("setup after reboot: %v", err)
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 1 || got[second.IP] != tn.id("web") {
		t.Errorf("leases = %v, want only %s", got, second.IP)
	}
	checkEth0(t, second)
}

func TestTeardownAfterCrashAfterDel(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web")
	sb := tn.setupPod(t, p)
	// Killed after the DELs, before the namespace was removed.
	if err := tn.delAll(context.Background(), p.Namespace, p.Name, nil, sandboxRecord{}); err != nil {
		t.Fatal(err)
	}
	if err := tn.Teardown(context.Background(), p.Namespace, p.Name, nil); err != nil {
		t.Fatalf("teardown after crash: %v", err)
	}
	if _, err := os.Stat(sb.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("netns after teardown: %v", err)
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 0 {
		t.Errorf("leases = %v", got)
	}
}

func TestTeardownAfterCrashBetweenUnmountAndRemove(t *testing.T) {
	tn := newTestNet(t)
	p := tn.pod("web", 80, int32(30000+tn.n))
	sb := tn.setupPod(t, p)
	if err := unix.Unmount(sb.NetNSPath, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	// The file is no namespace now: plugins must not be handed it.
	if err := tn.Teardown(context.Background(), p.Namespace, p.Name, nil); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 0 {
		t.Errorf("leases = %v", got)
	}
	if rules := natRules(t, tn.id("web")); len(rules) != 0 {
		t.Errorf("nat rules left: %v", rules)
	}
	sbs, err := tn.Sandboxes()
	if err != nil || len(sbs) != 0 {
		t.Errorf("sandboxes = %v, %v; want none", sbs, err)
	}
}

// checkEth0 checks that the sandbox's eth0 has its IP.
func checkEth0(t *testing.T, sb Sandbox) {
	t.Helper()
	inNetNS(t, sb.NetNSPath, func() error {
		eth0, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := eth0.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.String() == sb.IP {
				return nil
			}
		}
		t.Errorf("eth0 has %v, want %s", addrs, sb.IP)
		return nil
	})
}

// TestNewRemovesInterruptedRecordWrites: a sandbox record's write killed
// half-way leaves a temporary file; the next start removes it.
func TestNewRemovesInterruptedRecordWrites(t *testing.T) {
	tn := newTestNet(t)
	dir := filepath.Join(tn.cfg.StateDir, statedir.Sandboxes)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, statedir.TmpPrefix+statedir.Key(tn.ns, "web")+".json-123")
	if err := os.WriteFile(tmp, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(tn.cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("%s after New: %v, want it removed", tmp, err)
	}
}
