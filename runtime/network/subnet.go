package network

import (
	"fmt"
	"net/netip"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// PodSubnet returns the subnet of the default network pods are created on.
func (h *Host) PodSubnet() netip.Prefix {
	h.mu.Lock()
	defer h.mu.Unlock()
	return netip.MustParsePrefix(h.cfg.PodSubnet)
}

// SetPodSubnet makes subnet, this host's slice of the cluster pod range,
// the default network's from now on: pods created afterwards are numbered
// in it, and the bridge takes its gateway address at the next pod's ADD.
// Pods numbered in another range keep their addresses until they are
// replaced (the planner replaces them: PlanOptions.PodSubnet). Setting the
// subnet in force changes nothing.
func (h *Host) SetPodSubnet(subnet netip.Prefix) error {
	if !subnet.IsValid() || !subnet.Addr().Is4() || subnet != subnet.Masked() || subnet.Bits() > 30 {
		return fmt.Errorf("set pod subnet %s: want an IPv4 network address of at most /30: %w", subnet, errdefs.ErrInvalidArgument)
	}
	h.mu.Lock()
	prev := h.cfg.PodSubnet
	h.cfg.PodSubnet = subnet.String()
	h.mu.Unlock()
	if prev == subnet.String() {
		return nil
	}
	if err := h.ensureDefaults(); err != nil {
		h.mu.Lock()
		h.cfg.PodSubnet = prev
		h.mu.Unlock()
		return fmt.Errorf("set pod subnet %s: %w", subnet, err)
	}
	return nil
}
