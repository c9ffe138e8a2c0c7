package nft

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/netplan"
)

// Conntrack deletes conntrack entries of this host (or of the network
// namespace NetNS) over the kernel's conntrack netlink interface.
type Conntrack struct {
	// NetNS, when set, is the file of the network namespace whose table is
	// cleaned (/run/netns/NAME): for tests and test hosts. Default: the
	// agent's own.
	NetNS string
}

// DeleteStaleUDP deletes the UDP conntrack entries that flows (from
// netplan.StaleUDP, after the change was applied) describe, and returns how
// many matched. The table is dumped once and every entry matched against
// all flows. An entry matches a flow when it is UDP, its original
// destination port is the flow's port, its original destination address
// is the flow's Dst (any address for a node port, as kube-proxy does), and,
// when the flow names an endpoint, its reply comes from that endpoint (the
// address it was DNATed to).
func (c Conntrack) DeleteStaleUDP(flows []netplan.StaleFlow) (int, error) {
	if len(flows) == 0 {
		return 0, nil
	}
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	defer h.Close()
	n, err := h.ConntrackDeleteFilter(netlink.ConntrackTable, unix.AF_INET, staleFilter(flows))
	if err != nil {
		return int(n), fmt.Errorf("delete %d stale UDP conntrack flows: %w", len(flows), err)
	}
	return int(n), nil
}

// handle opens a netfilter netlink handle in c's namespace.
func (c Conntrack) handle() (*netlink.Handle, error) {
	if c.NetNS == "" {
		h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
		if err != nil {
			return nil, fmt.Errorf("conntrack: netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(c.NetNS)
	if err != nil {
		return nil, fmt.Errorf("conntrack: open netns %s: %w", c.NetNS, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("conntrack: netlink in netns %s: %w", c.NetNS, err)
	}
	return h, nil
}

// staleFilter matches conntrack entries against stale flows.
type staleFilter []netplan.StaleFlow

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (f staleFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	dst, _ := netip.AddrFromSlice(flow.Forward.DstIP)
	replySrc, _ := netip.AddrFromSlice(flow.Reverse.SrcIP)
	dst, replySrc = dst.Unmap(), replySrc.Unmap()
	for _, s := range f {
		if int32(flow.Forward.DstPort) != s.Port {
			continue
		}
		if s.Dst.IsValid() && s.Dst != dst {
			continue
		}
		if s.Endpoint.IsValid() && s.Endpoint != replySrc {
			continue
		}
		return true
	}
	return false
}
