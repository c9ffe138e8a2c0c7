package host

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/identifiers"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/runtime/network"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
	"github.com/kelpie-dev/kelpie/runtime/volume"
)

// labelHostNetwork marks the containers of a hostNetwork pod, which has no
// sandbox network namespace: Observe must not report it as broken.
const labelHostNetwork = "kelpie.dev/host-network"

// Config configures a Containerd. The zero value of every field means its
// default; New validates the whole and names the field it rejects.
type Config struct {
	// Address is containerd's socket (--containerd-address,
	// KELPIE_CONTAINERD_ADDRESS); "" means image.DefaultAddress.
	Address string
	// Namespace is the containerd namespace everything kelpie creates lives
	// in (--containerd-namespace); "" means image.DefaultNamespace ("kelpie").
	Namespace string
	// StateDir holds the pods' volumes, logs and /etc files, the CNI
	// configuration kelpie writes and the claims' data (--state-dir); ""
	// means statedir.Default. It must be an absolute path.
	StateDir string
	// CNIBinDir lists the directories searched for CNI plugins
	// (--cni-bin-dir); empty means /usr/lib/cni (Debian's
	// containernetworking-plugins), then /opt/cni/bin (upstream's tarball).
	CNIBinDir []string
	// PodSubnet is this host's slice of the cluster pod range, the subnet of
	// its default pod network (--pod-subnet); "" means network.DefaultPodSubnet.
	PodSubnet string
	// BridgeName is the Linux bridge of the default pod network; "" means
	// network.DefaultBridgeName ("kelpie0").
	BridgeName string
	// ClusterDomain, when set, gives the pods with their own network
	// namespace the cluster DNS in their resolv.conf (netplan.PodResolvConf:
	// the agent's DNS server on the pod bridge's gateway, the Kubernetes
	// search path under this domain, ndots:5). "" keeps resolv.conf derived
	// from the host's: `kelpie apply` runs no DNS server. hostNetwork pods
	// always get the host's.
	ClusterDomain string
	// ExternalMasquerade says that kelpie's nftables table masquerades pod
	// traffic leaving the cluster pod range (the agent's data path): the
	// default bridge then does not (ipMasq: false), so traffic between pods
	// on different hosts keeps its source address. Off (`kelpie apply`,
	// which loads no table), the bridge masquerades what leaves its subnet.
	ExternalMasquerade bool
	// ImageDirs are searched, in order, for images containerd lacks
	// (--image-dir): OCI image layouts, or directories of them and of OCI or
	// Docker archives.
	ImageDirs []string
	// RegistryMirrors maps a registry host to the base URL of a mirror that
	// replaces it (--registry-mirror host=URL).
	RegistryMirrors map[string]string
	// RegistryTLS is the TLS configuration of registry and mirror
	// connections (--tls-ca, and --tls-cert as client certificate); nil
	// means Go's defaults.
	RegistryTLS *tls.Config
	// InsecureRegistries names non-loopback registry hosts that may be
	// reached over plain HTTP.
	InsecureRegistries []string
	// AllowHostPaths are the host path prefixes hostPath volumes may use
	// (--allow-host-path); anything else is refused. Each must be absolute.
	AllowHostPaths []string
	// AllowPrivileged lets pods ask for anything (--allow-privileged):
	// privileged containers, every capability, the host's network, no
	// seccomp filter. Without it CreatePod refuses them unless the two
	// fields below allow the need.
	AllowPrivileged bool
	// AllowCapabilities lists the capabilities beyond containerd's default
	// set that containers may add (--allow-capability, "NET_ADMIN" or
	// "CAP_NET_ADMIN"); ALL is only allowed by AllowPrivileged.
	AllowCapabilities []string
	// AllowHostNetwork lets pods run in the host's network namespace
	// (--allow-host-network).
	AllowHostNetwork bool
	// Progress, when set, receives progress reports of image imports and
	// pulls (see image.ProgressFunc).
	Progress image.ProgressFunc
	// Log receives what the runtime does, one record per container created,
	// started, stopped or removed. Secret values are never logged. nil
	// discards.
	Log *slog.Logger
}

// validate fills the defaults and rejects nonsense, naming the field.
func (c *Config) validate() error {
	if c.Address == "" {
		c.Address = image.DefaultAddress
	}
	if c.Namespace == "" {
		c.Namespace = image.DefaultNamespace
	}
	if err := identifiers.Validate(c.Namespace); err != nil {
		return fmt.Errorf("runtime config: Namespace %q (--containerd-namespace): %w", c.Namespace, image.ConvertErr(err))
	}
	if c.StateDir == "" {
		c.StateDir = statedir.Default
	}
	if !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("runtime config: StateDir %q (--state-dir): must be an absolute path: %w", c.StateDir, errdefs.ErrInvalidArgument)
	}
	c.StateDir = filepath.Clean(c.StateDir)
	for i, d := range c.CNIBinDir {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("runtime config: CNIBinDir[%d] %q (--cni-bin-dir): must be an absolute path: %w", i, d, errdefs.ErrInvalidArgument)
		}
	}
	if c.PodSubnet == "" {
		c.PodSubnet = network.DefaultPodSubnet
	}
	pfx, err := netip.ParsePrefix(c.PodSubnet)
	if err != nil {
		return fmt.Errorf("runtime config: PodSubnet %q (--pod-subnet): %w: %w", c.PodSubnet, errdefs.ErrInvalidArgument, err)
	}
	if !pfx.Addr().Is4() {
		return fmt.Errorf("runtime config: PodSubnet %q (--pod-subnet): only IPv4 is supported: %w", c.PodSubnet, errdefs.ErrInvalidArgument)
	}
	if pfx != pfx.Masked() {
		return fmt.Errorf("runtime config: PodSubnet %q (--pod-subnet): has host bits set (did you mean %s?): %w", c.PodSubnet, pfx.Masked(), errdefs.ErrInvalidArgument)
	}
	if free := pfx.Addr().BitLen() - pfx.Bits(); free < 2 {
		return fmt.Errorf("runtime config: PodSubnet %q (--pod-subnet): too small for a gateway and a pod: %w", c.PodSubnet, errdefs.ErrInvalidArgument)
	}
	for i, d := range c.ImageDirs {
		if d == "" {
			return fmt.Errorf("runtime config: ImageDirs[%d] (--image-dir) is empty: %w", i, errdefs.ErrInvalidArgument)
		}
	}
	for i, p := range c.AllowHostPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("runtime config: AllowHostPaths[%d] %q (--allow-host-path): must be an absolute path: %w", i, p, errdefs.ErrInvalidArgument)
		}
	}
	if _, err := c.Privileges(); err != nil {
		return fmt.Errorf("runtime config: AllowCapabilities: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Privileges returns what the host grants its pods beyond the default
// isolation, from AllowPrivileged, AllowHostNetwork and AllowCapabilities:
// CreatePod refuses a pod that asks for more, and a planner given it
// (reconciler.PlanOptions.Privileges) shows the refusal before anything
// runs. It fails on a capability name that is not one.
func (c Config) Privileges() (reconciler.HostPrivileges, error) {
	return reconciler.NewHostPrivileges(c.AllowPrivileged, c.AllowHostNetwork, c.AllowCapabilities)
}

// Containerd is the reconciler's Runtime on one host: pods are containerd
// containers in one containerd namespace, joined to a CNI network namespace
// (the sandbox) and to volumes under the state dir. It is safe for
// concurrent use, within the contract of reconciler.Runtime.
type Containerd struct {
	cfg     Config
	priv    reconciler.HostPrivileges // from cfg
	podsDir string                    // StateDir/pods, symlinks resolved (it is compared with mount points)
	client  *image.Client
	cd      *containerd.Client
	net     *network.Host
	vols    *volume.Manager
	log     *slog.Logger
	logs    logFiles // renames of log files: rotations and restarts
}

var _ reconciler.Runtime = (*Containerd)(nil)

// New connects to containerd and prepares the host network and volume
// managers. It fails when cfg is invalid (naming the field), when
// containerd does not answer, or when the state dir cannot be created.
func New(ctx context.Context, cfg Config) (*Containerd, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	priv, err := cfg.Privileges()
	if err != nil {
		return nil, err
	}
	opts := []image.Option{image.WithImageDirs(cfg.ImageDirs...)}
	if len(cfg.RegistryMirrors) > 0 {
		opts = append(opts, image.WithRegistryMirrors(cfg.RegistryMirrors))
	}
	if len(cfg.InsecureRegistries) > 0 {
		opts = append(opts, image.WithInsecureRegistries(cfg.InsecureRegistries...))
	}
	if cfg.Progress != nil {
		opts = append(opts, image.WithProgress(cfg.Progress, 0))
	}
	if cfg.RegistryTLS != nil {
		opts = append(opts, image.WithTLSConfig(cfg.RegistryTLS))
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, statedir.Pods), podDirMode); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", cfg.StateDir, err)
	}
	podsDir, err := filepath.EvalSymlinks(filepath.Join(cfg.StateDir, statedir.Pods))
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", cfg.StateDir, err)
	}
	client, err := image.Connect(ctx, cfg.Address, cfg.Namespace, opts...)
	if err != nil {
		return nil, err
	}
	hn, err := network.New(network.Config{
		StateDir:     cfg.StateDir,
		CNIBinDir:    cfg.CNIBinDir,
		PodSubnet:    cfg.PodSubnet,
		BridgeName:   cfg.BridgeName,
		NoMasquerade: cfg.ExternalMasquerade,
		Log:          cfg.Log,
	})
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("host network: %w", err)
	}
	vols, err := volume.New(volume.Config{StateDir: cfg.StateDir, AllowHostPaths: cfg.AllowHostPaths})
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("volumes: %w", err)
	}
	// The pods' volumes, logs and Secret files, and the claims' data, are
	// for root only, whatever their own modes: no other host user may
	// enter the dirs that hold them (made wider by earlier versions, or by
	// the umask).
	for _, d := range []string{statedir.Pods, statedir.Claims} {
		if err := os.Chmod(filepath.Join(cfg.StateDir, d), podDirMode); err != nil {
			client.Close()
			return nil, fmt.Errorf("state dir %s: %w", cfg.StateDir, err)
		}
	}
	return &Containerd{cfg: cfg, priv: priv, podsDir: podsDir, client: client, cd: client.Containerd(), net: hn, vols: vols, log: cfg.Log}, nil
}

// Close closes the connection to containerd. Containers keep running.
func (c *Containerd) Close() error {
	return c.client.Close()
}

// Client returns the image and containerd client the runtime uses (for
// `kelpie image import` and the like).
func (c *Containerd) Client() *image.Client { return c.client }

// StateDir is the validated state dir.
func (c *Containerd) StateDir() string { return c.cfg.StateDir }

// EnsureNetwork implements reconciler.Runtime.
func (c *Containerd) EnsureNetwork(ctx context.Context, n reconciler.Network) error {
	if err := c.net.EnsureNetwork(ctx, n); err != nil {
		return fmt.Errorf("ensure network %s: %w", n.Name, err)
	}
	return nil
}

// RemoveNetwork implements reconciler.Runtime.
func (c *Containerd) RemoveNetwork(ctx context.Context, name string) error {
	if err := c.net.RemoveNetwork(ctx, name); err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

// EnsureClaim implements reconciler.Runtime.
func (c *Containerd) EnsureClaim(ctx context.Context, cl reconciler.Claim) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.vols.EnsureClaim(cl); err != nil {
		return fmt.Errorf("ensure claim %s: %w", reconciler.JoinName(cl.Namespace, cl.Name), err)
	}
	return nil
}

// RemoveClaim deletes a claim's local volume and its data, for `kelpie
// volume rm`: the only way a claim's data is ever deleted. It refuses
// while a container of a pod on this host mounts the volume. Removing a
// claim that does not exist succeeds.
func (c *Containerd) RemoveClaim(ctx context.Context, namespace, name string) error {
	key := reconciler.JoinName(namespace, name)
	ctx = c.client.WithNamespace(ctx)
	dir := c.vols.ClaimDir(namespace, name)
	recs, err := c.cd.ContainerService().List(ctx, managedFilter)
	if err != nil {
		return fmt.Errorf("remove claim %s: list containers: %w", key, image.ConvertErr(err))
	}
	for _, rec := range recs {
		cont, err := c.cd.LoadContainer(ctx, rec.ID)
		if err != nil {
			continue // removed meanwhile
		}
		spec, err := cont.Spec(ctx)
		if err != nil {
			return fmt.Errorf("remove claim %s: spec of container %s: %w", key, rec.ID, image.ConvertErr(err))
		}
		for _, m := range spec.Mounts {
			// A subPath's source is kelpie's staging bind: Shows looks through it.
			if shows, err := c.vols.Shows(m.Source, dir); err != nil {
				return fmt.Errorf("remove claim %s: %w", key, err)
			} else if shows {
				return fmt.Errorf("remove claim %s: pod %s uses it; remove the pod first: %w", key, rec.Labels[reconciler.LabelPod], errdefs.ErrFailedPrecondition)
			}
		}
	}
	return c.vols.RemoveClaim(namespace, name)
}

// Privileges returns what the host grants its pods beyond the default
// isolation (see Config.Privileges).
func (c *Containerd) Privileges() reconciler.HostPrivileges { return c.priv }

// PodSubnet returns the subnet pods are numbered in on the default network.
func (c *Containerd) PodSubnet() netip.Prefix { return c.net.PodSubnet() }

// clusterDNS is the cluster DNS of the pods created now: the gateway of the
// default network's subnet, when ClusterDomain is set.
func (c *Containerd) clusterDNS() clusterDNS {
	if c.cfg.ClusterDomain == "" {
		return clusterDNS{}
	}
	return clusterDNS{nameserver: c.net.PodSubnet().Addr().Next(), domain: c.cfg.ClusterDomain}
}

// SetPodSubnet makes subnet the default network's from now on (the agent
// sets the slice the cluster gave this host); see network.Host.SetPodSubnet.
func (c *Containerd) SetPodSubnet(subnet netip.Prefix) error { return c.net.SetPodSubnet(subnet) }
