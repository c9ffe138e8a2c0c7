package routes

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Protocol is the route protocol number (rtm_protocol) of every route kelpie
// makes: 0x4b (75, "K"), which neither iproute2's rt_protos nor any routing
// daemon we know of uses (flannel marks nothing; Calico uses 80, BIRD 12,
// Zebra 11). It is how Sync tells its routes from everyone else's:
// `ip route show proto 75` lists them.
const Protocol netlink.RouteProtocol = 0x4b

const (
	// DefaultDevice is the name of kelpie's VXLAN device.
	DefaultDevice = "kelpie.vxlan"
	// DefaultVNI is the VXLAN network identifier (flannel's default too).
	DefaultVNI = 1
	// DefaultPort is the VXLAN UDP port: the Linux kernel's historic
	// default and flannel's, so firewalls written for flannel fit.
	DefaultPort = 8472
	// Overhead is what VXLAN adds to a packet: 14 (inner Ethernet) + 8
	// (VXLAN) + 8 (UDP) + 20 (outer IPv4) bytes; the device's MTU is the
	// underlay's minus this.
	Overhead = 50
)

// Config configures the VXLAN device. Zero fields take the defaults.
type Config struct {
	// Device is the VXLAN device's name (DefaultDevice).
	Device string
	// VNI is the VXLAN network identifier (DefaultVNI); every host of a
	// cluster must use the same.
	VNI int
	// Port is the VXLAN UDP port (DefaultPort); the same on every host.
	Port int
	// MTU is the VXLAN device's MTU; zero means the underlay link's MTU
	// minus Overhead.
	MTU int
}

// validate fills the defaults and rejects nonsense.
func (c *Config) validate() error {
	if c.Device == "" {
		c.Device = DefaultDevice
	}
	if c.VNI == 0 {
		c.VNI = DefaultVNI
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	switch {
	case len(c.Device) > 15:
		return fmt.Errorf("routes: device name %q is longer than 15 bytes", c.Device)
	case c.VNI < 0 || c.VNI > 1<<24-1:
		return fmt.Errorf("routes: VNI %d: want 1 to %d", c.VNI, 1<<24-1)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("routes: VXLAN port %d: want 1 to 65535", c.Port)
	case c.MTU < 0 || (c.MTU > 0 && c.MTU < 576):
		return fmt.Errorf("routes: VXLAN MTU %d: want 0 (the underlay's minus %d) or at least 576", c.MTU, Overhead)
	}
	return nil
}

// Syncer programs one network namespace's routes to its peers. It keeps no
// state of its own between calls: every Sync reads the kernel's. It is not
// safe for concurrent use (the agent's loop calls it).
type Syncer struct {
	h   *netlink.Handle
	cfg Config
}

// New returns a Syncer for the calling process's network namespace.
func New(cfg Config) (*Syncer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("routes: netlink handle: %w", err)
	}
	return &Syncer{h: h, cfg: cfg}, nil
}

// NewAt returns a Syncer for the network namespace at path (a bind mount
// such as /run/netns/NAME, or /proc/PID/ns/net). Its netlink sockets are
// opened in that namespace, so no thread of the process changes namespace.
func NewAt(path string, cfg Config) (*Syncer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("routes: open netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("routes: netlink handle in %s: %w", path, err)
	}
	return &Syncer{h: h, cfg: cfg}, nil
}

// Close releases the Syncer's netlink sockets. Routes stay.
func (s *Syncer) Close() { s.h.Close() }

// Config returns the configuration with its defaults filled in.
func (s *Syncer) Config() Config { return s.cfg }

// notFound reports whether err says a link does not exist.
func notFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// ipnet converts a prefix to the library's form.
func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// prefixOf converts the library's form back (invalid for nil).
func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

// addrOf converts an IP (invalid for nil).
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
