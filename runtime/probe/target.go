package probe

import (
	"fmt"
	"net/netip"
	"strings"
)

// Loopback is the address a pod in the host's network is probed on.
const Loopback = "127.0.0.1"

// Target is the pod a probe checks, as far as its address goes.
type Target struct {
	// PodIP is the pod's address on its default network; "" when it has
	// none (a pod in the host's network, or one whose sandbox is broken).
	PodIP string
	// HostNetwork reports that the pod runs in the host's network
	// namespace: it is probed on the host's loopback.
	HostNetwork bool
}

// Address returns the address a probe of t connects to, given the host the
// probe's manifest names ("" for none). A probe reaches the pod and nothing
// else: the pod's IP, or for a pod in the host's network a loopback address
// ("localhost" is 127.0.0.1). Any other host is refused, unlike the
// kubelet, which connects wherever the manifest says: a committer must not
// be able to make every agent open connections to addresses of its
// choosing (the host's neighbours, cloud metadata services) and read
// their answers in the pod's status. A pod that has no IP and is not in
// the host's network cannot be probed.
func (t Target) Address(host string) (string, error) {
	if t.HostNetwork {
		if host == "" || strings.EqualFold(host, "localhost") {
			return Loopback, nil
		}
		if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() && a.Zone() == "" {
			return a.String(), nil
		}
		return "", fmt.Errorf("host %s not allowed", quoteHost(host))
	}
	pod, err := netip.ParseAddr(t.PodIP)
	if err != nil {
		return "", fmt.Errorf("pod has no IP")
	}
	if host == "" {
		return pod.String(), nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap() == pod.Unmap() {
		return pod.String(), nil
	}
	return "", fmt.Errorf("host %s not allowed", quoteHost(host))
}

// quoteHost prints a host for an output: as it is when it is a plain name
// or address, quoted otherwise.
func quoteHost(h string) string {
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]%_", r)) {
			return fmt.Sprintf("%q", short(h))
		}
	}
	return short(h)
}
