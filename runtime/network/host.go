package network

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// Defaults of a Config; its StateDir defaults to statedir.Default.
const (
	DefaultBridgeName = "kelpie0"       // short enough for IFNAMSIZ
	DefaultPodSubnet  = "10.244.0.0/24" // the first /24 slice of the default cluster pod range 10.244.0.0/16
)

// netDefaultCNIBinDirs are where CNI plugins are looked for by default:
// Debian's containernetworking-plugins package, then the upstream tarball's
// place.
var netDefaultCNIBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// RequiredPlugins are the plugins the default network needs.
var RequiredPlugins = []string{"bridge", "host-local", "portmap", "loopback"}

// Config configures host networking.
type Config struct {
	// StateDir is kelpie's state dir: CNI conflists go under
	// StateDir/cni/net.d, IP leases under StateDir/cni/networks and pod
	// network namespaces under StateDir/netns. Default statedir.Default.
	StateDir string
	// CNIBinDir are the directories searched for CNI plugins, in order.
	// Default /usr/lib/cni, then /opt/cni/bin.
	CNIBinDir []string
	// PodSubnet is this host's slice of the pod range, the subnet of the
	// default network. Default DefaultPodSubnet.
	PodSubnet string
	// CNICacheDir is libcni's result cache. Default StateDir/cni/cache, so
	// that kelpie's state (and a test's) never mixes with /var/lib/cni.
	CNICacheDir string
	// BridgeName is the default network's bridge. Default DefaultBridgeName.
	BridgeName string
	// NoMasquerade leaves masquerading pod traffic that leaves the subnet
	// to someone else (the agent's nftables table, which masquerades only
	// what leaves the cluster pod range): the default bridge sets ipMasq
	// false. Pods created before keep the configuration they were created
	// with (their DEL uses it).
	NoMasquerade bool
	// Log receives what the host network repairs (a torn CNI cache entry
	// rebuilt). nil discards.
	Log *slog.Logger
}

// validate fills defaults and rejects nonsense with a precise message.
func (c *Config) validate() error {
	if c.StateDir == "" {
		c.StateDir = statedir.Default
	}
	if !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("state dir %q is not an absolute path: %w", c.StateDir, errdefs.ErrInvalidArgument)
	}
	if len(c.CNIBinDir) == 0 {
		c.CNIBinDir = append([]string(nil), netDefaultCNIBinDirs...)
	}
	if c.PodSubnet == "" {
		c.PodSubnet = DefaultPodSubnet
	}
	ip, subnet, err := net.ParseCIDR(c.PodSubnet)
	if err != nil {
		return fmt.Errorf("pod subnet %q is not a CIDR: %w", c.PodSubnet, errdefs.ErrInvalidArgument)
	}
	if ip.To4() == nil {
		return fmt.Errorf("pod subnet %s: only IPv4 is supported: %w", c.PodSubnet, errdefs.ErrInvalidArgument)
	}
	if ones, bits := subnet.Mask.Size(); bits-ones < 2 {
		return fmt.Errorf("pod subnet %s is too small for a gateway and a pod: %w", c.PodSubnet, errdefs.ErrInvalidArgument)
	}
	c.PodSubnet = subnet.String()
	if c.CNICacheDir == "" {
		c.CNICacheDir = filepath.Join(c.StateDir, statedir.CNICache)
	}
	if c.BridgeName == "" {
		c.BridgeName = DefaultBridgeName
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if len(c.BridgeName) > cniIfNameMax {
		return fmt.Errorf("bridge name %q is longer than %d characters: %w", c.BridgeName, cniIfNameMax, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Sandbox is a pod's network: its namespace and the addresses CNI gave it.
// A hostNetwork pod's Sandbox is the zero value.
type Sandbox struct {
	// NetNSPath is the pod's persistent network namespace, the path
	// containers join.
	NetNSPath string
	// IP is the pod's IPv4 address on the default network (eth0).
	IP string
	// IPs maps each extra Network the pod joined (Pod.Networks) to its
	// address there; the default network is in IP only.
	IPs map[string]string
	// Ready reports that the namespace is mounted and joined to the default
	// network. Only Sandboxes() sets it false: a namespace whose creation
	// or removal was interrupted, for Observe to report as not ready.
	Ready bool
}

// Host is the host side of pod networking: the CNI networks kelpie
// writes, and the pods' network namespaces attached to them. Its methods
// are safe for concurrent use on different pods and networks.
type Host struct {
	cfg      Config
	cni      *libcni.CNIConfig
	confDir  string // CNI conflists
	netnsDir string // pod network namespaces
	leaseDir string // host-local's dataDir

	mu sync.Mutex // serialises writes of the default conflists
}

// New checks that the CNI plugins are there, creates the state dir's
// network directories and writes the default conflists.
func New(cfg Config) (*Host, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h := &Host{
		cfg:      cfg,
		confDir:  filepath.Join(cfg.StateDir, statedir.CNIConf),
		netnsDir: filepath.Join(cfg.StateDir, statedir.NetNS),
		leaseDir: filepath.Join(cfg.StateDir, statedir.CNILeases),
	}
	h.cni = libcni.NewCNIConfigWithCacheDir(cfg.CNIBinDir, cfg.CNICacheDir, nil)
	for _, plugin := range RequiredPlugins {
		if _, err := invoke.FindInPath(plugin, cfg.CNIBinDir); err != nil {
			return nil, fmt.Errorf("CNI plugin %s not found in %v (apt-get install containernetworking-plugins, or set --cni-bin-dir): %w",
				plugin, cfg.CNIBinDir, errdefs.ErrFailedPrecondition)
		}
	}
	for _, dir := range []string{h.confDir, h.netnsDir, h.leaseDir, cfg.CNICacheDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("host network: %w", err)
		}
	}
	statedir.RemoveTemps(h.confDir)
	// A sandbox record's write killed half-way leaves its temporary file.
	statedir.RemoveTemps(filepath.Join(cfg.StateDir, statedir.Sandboxes))
	if err := h.ensureDefaults(); err != nil {
		return nil, err
	}
	return h, nil
}
