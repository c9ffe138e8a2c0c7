package netplan

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults of the networking flags.
var (
	// DefaultClusterCIDR is --cluster-cidr: the pod range of the cluster,
	// cut into one slice per host (flannel's and kubeadm's default).
	DefaultClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	// DefaultServiceCIDR is --service-cidr: where Service virtual IPs come
	// from (kubeadm's default).
	DefaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
	// DefaultNodePorts is --service-node-port-range (Kubernetes' default).
	DefaultNodePorts = PortRange{Min: 30000, Max: 32767}
)

const (
	// DefaultSliceBits is the prefix length of a host's slice: a /24 gives
	// 253 pods a host and 256 hosts in the default /16, as in Kubernetes.
	DefaultSliceBits = 24
	// DefaultSliceRetention is how long a host that is down or gone keeps
	// its slice for sure. Its pods may still run behind a partition, so
	// handing the slice to another host would give two pods one address;
	// after this long the slice is taken back only when the range is
	// exhausted (or at once when the host is no longer known at all).
	DefaultSliceRetention = 24 * time.Hour
	// DefaultQuarantine is how long a freed Service IP or node port stays
	// unused by other Services: clients that cached the old name's address
	// (DNS caches, connection pools) must not reach a different Service. The
	// Service that freed it may take it back at once.
	DefaultQuarantine = time.Hour
	// DefaultClusterDomain is --cluster-domain (Kubernetes' default).
	DefaultClusterDomain = "cluster.local"
)

// PortRange is an inclusive range of ports.
type PortRange struct {
	Min int32 `json:"min"`
	Max int32 `json:"max"`
}

// String formats the range as "MIN-MAX", the flag's syntax.
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p int32) bool { return p >= r.Min && p <= r.Max }

// ParsePortRange parses "MIN-MAX" (or a single port) as
// --service-node-port-range takes it.
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, found := strings.Cut(strings.TrimSpace(s), "-")
	if !found {
		hi = lo
	}
	a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	b, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err := errors.Join(err1, err2); err != nil {
		return PortRange{}, fmt.Errorf("port range %q: want MIN-MAX: %w", s, err)
	}
	r := PortRange{Min: int32(a), Max: int32(b)}
	if r.Min < 1 || r.Min > r.Max {
		return PortRange{}, fmt.Errorf("port range %q: want 1 <= MIN <= MAX <= 65535", s)
	}
	return r, nil
}

// Config is the cluster's networking configuration, the same on every host.
// Zero fields take the defaults above.
type Config struct {
	// ClusterCIDR is the pod range of the whole cluster (--cluster-cidr).
	ClusterCIDR netip.Prefix
	// SliceBits is the prefix length of each host's slice of ClusterCIDR.
	SliceBits int
	// SliceRetention: see DefaultSliceRetention.
	SliceRetention time.Duration
	// ServiceCIDR is the range of Service virtual IPs (--service-cidr).
	ServiceCIDR netip.Prefix
	// NodePorts is the range of node ports (--service-node-port-range).
	NodePorts PortRange
	// Quarantine: see DefaultQuarantine.
	Quarantine time.Duration
	// ClusterDomain is the DNS suffix of Service names (--cluster-domain).
	ClusterDomain string
}

// DefaultConfig returns the configuration of an agent started without
// networking flags.
func DefaultConfig() Config {
	c := Config{}
	if err := c.validate(); err != nil {
		panic(err) // the defaults are valid
	}
	return c
}

// Validate fills zero fields with the defaults and rejects nonsense with a
// message that names the flag.
func (c *Config) Validate() error { return c.validate() }

// validate is Validate.
func (c *Config) validate() error {
	if !c.ClusterCIDR.IsValid() {
		c.ClusterCIDR = DefaultClusterCIDR
	}
	if c.SliceBits == 0 {
		c.SliceBits = DefaultSliceBits
	}
	if c.SliceRetention == 0 {
		c.SliceRetention = DefaultSliceRetention
	}
	if !c.ServiceCIDR.IsValid() {
		c.ServiceCIDR = DefaultServiceCIDR
	}
	if c.NodePorts == (PortRange{}) {
		c.NodePorts = DefaultNodePorts
	}
	if c.Quarantine == 0 {
		c.Quarantine = DefaultQuarantine
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = DefaultClusterDomain
	}
	c.ClusterDomain = strings.TrimSuffix(strings.ToLower(c.ClusterDomain), ".")
	if err := checkRange("--cluster-cidr", c.ClusterCIDR, 30); err != nil {
		return err
	}
	if c.SliceBits < c.ClusterCIDR.Bits() || c.SliceBits > 30 {
		return fmt.Errorf("config: slice size /%d: want a prefix length from /%d (the whole --cluster-cidr %s) to /30", c.SliceBits, c.ClusterCIDR.Bits(), c.ClusterCIDR)
	}
	if err := checkRange("--service-cidr", c.ServiceCIDR, 30); err != nil {
		return err
	}
	if c.ClusterCIDR.Overlaps(c.ServiceCIDR) {
		return fmt.Errorf("config: --cluster-cidr %s and --service-cidr %s overlap", c.ClusterCIDR, c.ServiceCIDR)
	}
	if c.NodePorts.Min < 1 || c.NodePorts.Min > c.NodePorts.Max || c.NodePorts.Max > 65535 {
		return fmt.Errorf("config: --service-node-port-range %s: want 1 <= MIN <= MAX <= 65535", c.NodePorts)
	}
	if c.SliceRetention < 0 || c.Quarantine < 0 {
		return fmt.Errorf("config: negative slice retention (%s) or quarantine (%s)", c.SliceRetention, c.Quarantine)
	}
	if !validDomain(c.ClusterDomain) {
		return fmt.Errorf("config: --cluster-domain %q is not a DNS name", c.ClusterDomain)
	}
	return nil
}

// checkRange checks that p is an IPv4 network address no longer than maxBits.
func checkRange(flag string, p netip.Prefix, maxBits int) error {
	switch {
	case !p.Addr().Is4():
		return fmt.Errorf("config: %s %s: only IPv4 is supported", flag, p)
	case p.Masked() != p:
		return fmt.Errorf("config: %s %s has host bits set (did you mean %s?)", flag, p, p.Masked())
	case p.Bits() > maxBits:
		return fmt.Errorf("config: %s %s is too small (at most /%d)", flag, p, maxBits)
	}
	return nil
}

// validDomain reports whether s is a dot-separated list of DNS labels.
func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}

// validLabel reports whether l is an RFC 1123 label.
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
