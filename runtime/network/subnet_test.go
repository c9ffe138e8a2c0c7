package network

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/kelpie-dev/kelpie/runtime/network/nettest"
)

// TestSetPodSubnet checks that pods created after the host's slice changed
// are numbered in the new slice, that the pod created before keeps its
// address and still tears down, and that bad subnets are refused.
func TestSetPodSubnet(t *testing.T) {
	tn := newTestNet(t)
	first := tn.setupPod(t, tn.pod("before"))
	old := netip.MustParsePrefix(fmt.Sprintf("10.250.%d.0/24", tn.n))
	if !old.Contains(netip.MustParseAddr(first.IP)) {
		t.Fatalf("first pod got %s, outside %s", first.IP, old)
	}
	n := nettest.FreeOctet(t, "10.250.")
	next := netip.MustParsePrefix(fmt.Sprintf("10.250.%d.0/24", n))
	if err := tn.SetPodSubnet(next); err != nil {
		t.Fatalf("SetPodSubnet(%s): %v", next, err)
	}
	if got := tn.PodSubnet(); got != next {
		t.Fatalf("PodSubnet() = %s after setting %s", got, next)
	}
	second := tn.setupPod(t, tn.pod("after"))
	if !next.Contains(netip.MustParseAddr(second.IP)) {
		t.Fatalf("pod created after SetPodSubnet(%s) got %s", next, second.IP)
	}
	if err := tn.Teardown(t.Context(), tn.ns, "before", nil); err != nil {
		t.Fatalf("teardown of the pod numbered in the old slice: %v", err)
	}
	for _, bad := range []string{"10.250.9.1/24", "10.250.9.0/31", "fd00::/64"} {
		if err := tn.SetPodSubnet(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("SetPodSubnet(%s) succeeded; want an error", bad)
		}
	}
	if got := tn.PodSubnet(); got != next {
		t.Fatalf("PodSubnet() = %s after refused changes; want %s", got, next)
	}
}
