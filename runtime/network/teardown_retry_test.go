package network

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
)

// concurrentPods is how many sandboxes the concurrent teardown test tears
// down at once: pruning four pods at once was enough to make the bridge
// plugin's DEL fail (iptables-nft, CHAIN_DEL: Device or resource busy).
const concurrentPods = 8

// TestConcurrentTeardowns tears down many sandboxes at once: each
// teardown succeeds and frees its namespace, lease and NAT rules.
func TestConcurrentTeardowns(t *testing.T) {
	tn := newTestNet(t)
	sbs := make([]Sandbox, concurrentPods)
	for i := range sbs {
		sbs[i] = tn.setupPod(t, tn.pod(fmt.Sprint("p", i), 80, int32(31100+i)))
	}
	errs := make([]error, len(sbs))
	var wg sync.WaitGroup
	for i := range sbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tn.Teardown(context.Background(), tn.ns, fmt.Sprint("p", i), nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("teardown p%d: %v", i, err)
		}
		if _, err := os.Stat(sbs[i].NetNSPath); !os.IsNotExist(err) {
			t.Errorf("netns of p%d left: %v", i, err)
		}
		if rules := natRules(t, tn.id(fmt.Sprint("p", i))); len(rules) != 0 {
			t.Errorf("nat rules of p%d left:\n%s", i, strings.Join(rules, "\n"))
		}
	}
	if got := tn.leases(t, cniDefaultNetwork); len(got) != 0 {
		t.Errorf("leases left: %v", got)
	}
}

// busyBridge puts a "bridge" CNI plugin in front of the real one for tn: its
// DEL fails as iptables-nft does under concurrent deletes, as long as the
// returned set function's last value is positive (it counts down at each
// failure); every other call, and DEL once the count is out, execs the real
// plugin. calls reports how many DELs it received.
func busyBridge(t *testing.T, tn *testNet) (set func(failures int), calls func() int) {
	t.Helper()
	real, err := invoke.FindInPath("bridge", netDefaultCNIBinDirs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	left, count := filepath.Join(dir, "failures-left"), filepath.Join(dir, "del-calls")
	script := `#!/bin/sh
if [ "$CNI_COMMAND" = DEL ]; then
	echo x >>` + count + `
	left=$(cat ` + left + `)
	if [ "$left" -gt 0 ]; then
		echo $((left - 1)) >` + left + `
		cat >/dev/null
		echo '{"cniVersion":"1.0.0","code":999,"msg":"running [/usr/sbin/iptables -t nat -X CNI-0123 --wait]: exit status 1: iptables v1.8.9 (nf_tables):  CHAIN_DEL failed (Device or resource busy): chain CNI-0123"}'
		exit 1
	fi
fi
exec ` + real + "\n"
	if err := os.WriteFile(filepath.Join(dir, "bridge"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	set = func(n int) {
		if err := os.WriteFile(left, []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	calls = func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}
	set(0)
	tn.cfg.CNIBinDir = append([]string{dir}, tn.cfg.CNIBinDir...)
	tn.cni = libcni.NewCNIConfigWithCacheDir(tn.cfg.CNIBinDir, tn.cfg.CNICacheDir, nil)
	return set, calls
}

// TestTeardownRetriesBusyDel injects DEL failures: a few are retried away
// and the teardown succeeds with nothing left; more than the retries allow
// fail the teardown and leave the sandbox (namespace, lease, record) for a
// later teardown, which then removes it.
func TestTeardownRetriesBusyDel(t *testing.T) {
	saved := cniDelBackoff
	cniDelBackoff = []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	t.Cleanup(func() { cniDelBackoff = saved })

	for _, tc := range []struct {
		name      string
		failures  int
		wantCalls int // DELs the bridge plugin gets in the first teardown
		wantErr   bool
	}{
		{name: "no failure", failures: 0, wantCalls: 1},
		{name: "two busy", failures: 2, wantCalls: 3},
		{name: "busy beyond the retries", failures: 100, wantCalls: 4, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTestNet(t)
			set, calls := busyBridge(t, tn)
			p := tn.pod("web", 80, int32(31200+tn.n))
			sb, err := tn.Setup(context.Background(), p)
			if err != nil {
				t.Fatalf("setup: %v", err)
			}
			t.Cleanup(func() {
				set(0)
				_ = tn.Teardown(context.Background(), p.Namespace, p.Name, nil)
			})
			set(tc.failures)
			err = tn.Teardown(context.Background(), p.Namespace, p.Name, nil)
			if got := calls(); got != tc.wantCalls {
				t.Errorf("bridge DEL called %d times, want %d", got, tc.wantCalls)
			}
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "Device or resource busy") {
					t.Fatalf("teardown = %v, want the busy error", err)
				}
				// The sandbox stays, whole, for the next teardown.
				if ok, _ := netnsMounted(sb.NetNSPath); !ok {
					t.Errorf("netns unmounted after a failed DEL")
				}
				if sbs, _ := tn.Sandboxes(); len(sbs) != 1 {
					t.Errorf("sandboxes after a failed DEL = %v, want the pod's", sbs)
				}
				set(0)
				err = tn.Teardown(context.Background(), p.Namespace, p.Name, nil)
			}
			if err != nil {
				t.Fatalf("teardown: %v", err)
			}
			if _, err := os.Stat(sb.NetNSPath); !os.IsNotExist(err) {
				t.Errorf("netns left: %v", err)
			}
			if got := tn.leases(t, cniDefaultNetwork); len(got) != 0 {
				t.Errorf("leases left: %v", got)
			}
			if rules := natRules(t, tn.id("web")); len(rules) != 0 {
				t.Errorf("nat rules left:\n%s", strings.Join(rules, "\n"))
			}
			if sbs, err := tn.Sandboxes(); err != nil || len(sbs) != 0 {
				t.Errorf("sandboxes = %v, %v; want none", sbs, err)
			}
		})
	}
}
