package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/runtime/host"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/runtime/network"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// runtimeFlags are the flags of every command that talks to this host's
// containerd: plan, apply, ps, logs, image, volume.
func runtimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "containerd-address", Usage: "containerd's socket", Value: image.DefaultAddress, EnvVars: envVars("containerd-address")},
		&cli.StringFlag{Name: "containerd-namespace", Usage: "the containerd namespace kelpie's containers live in", Value: image.DefaultNamespace, EnvVars: envVars("containerd-namespace")},
		&cli.StringFlag{Name: "state-dir", Usage: "volumes, logs and network state of this host", Value: statedir.Default, EnvVars: envVars("state-dir")},
		&cli.StringSliceFlag{Name: "cni-bin-dir", Usage: "directories holding the CNI plugins (repeatable)", EnvVars: envVars("cni-bin-dir")},
		&cli.StringFlag{Name: "pod-subnet", Usage: "pin this host's pod subnet, its slice of the cluster pod range (default: `kelpie agent` takes the slice the cluster gives it; `apply` uses " + network.DefaultPodSubnet + ")", EnvVars: envVars("pod-subnet")},
		&cli.StringFlag{Name: "bridge", Usage: "the Linux bridge of the default pod network", Value: network.DefaultBridgeName, EnvVars: envVars("bridge")},
		&cli.StringSliceFlag{Name: "image-dir", Usage: "directory of OCI image layouts or archives used before any registry (repeatable)", EnvVars: envVars("image-dir")},
		&cli.StringSliceFlag{Name: "registry-mirror", Usage: "HOST=URL: pull HOST's images from URL instead (repeatable)", EnvVars: envVars("registry-mirror")},
		&cli.StringSliceFlag{Name: "insecure-registry", Usage: "HOST:PORT of a registry or mirror reachable over plain HTTP although not on loopback (repeatable)", EnvVars: envVars("insecure-registry")},
		&cli.StringSliceFlag{Name: "allow-host-path", Usage: "host path prefix hostPath volumes may use (repeatable)", EnvVars: envVars("allow-host-path")},
		&cli.BoolFlag{Name: "allow-privileged", Usage: "let pods ask for anything: privileged containers, every capability, the host's network, no seccomp filter", EnvVars: envVars("allow-privileged")},
		&cli.StringSliceFlag{Name: "allow-capability", Usage: "capability beyond the default set containers may add, e.g. NET_ADMIN (repeatable)", EnvVars: envVars("allow-capability")},
		&cli.BoolFlag{Name: "allow-host-network", Usage: "let pods run in the host's network namespace (hostNetwork: true)", EnvVars: envVars("allow-host-network")},
	}
}

// runtimeConfig builds the runtime configuration from the flags.
func runtimeConfig(c *cli.Context) (host.Config, error) {
	mirrors, err := image.ParseRegistryMirrors(c.StringSlice("registry-mirror"))
	if err != nil {
		return host.Config{}, usageErrorf(c, "invalid value for flag --registry-mirror: %v", err)
	}
	var progress image.ProgressFunc
	if isTerminal(c.App.ErrWriter) {
		progress = (&imageProgress{w: c.App.ErrWriter}).report
	}
	cfg := host.Config{
		Progress:        progress,
		Address:         c.String("containerd-address"),
		Namespace:       c.String("containerd-namespace"),
		StateDir:        c.String("state-dir"),
		CNIBinDir:       c.StringSlice("cni-bin-dir"),
		PodSubnet:       c.String("pod-subnet"),
		BridgeName:      c.String("bridge"),
		ImageDirs:       c.StringSlice("image-dir"),
		RegistryMirrors: mirrors,
		AllowHostPaths:  c.StringSlice("allow-host-path"),
		AllowPrivileged: c.Bool("allow-privileged"),
	}
	cfg.AllowCapabilities = c.StringSlice("allow-capability")
	cfg.AllowHostNetwork = c.Bool("allow-host-network")
	if _, err := cfg.Privileges(); err != nil {
		return host.Config{}, usageErrorf(c, "invalid value for flag %v", err)
	}
	cfg.InsecureRegistries = c.StringSlice("insecure-registry")
	return cfg, nil
}

// openRuntime connects to this host's runtime as the flags say. The caller
// closes it.
func openRuntime(c *cli.Context) (*host.Containerd, error) {
	cfg, err := runtimeConfig(c)
	if err != nil {
		return nil, err
	}
	return host.New(c.Context, cfg)
}

// hostFlags name this host and its labels for nodeSelector and DaemonSets.
func hostFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "node-name", Usage: "this host's name (default: the host name)", EnvVars: envVars("node-name")},
		&cli.StringSliceFlag{Name: "labels", Usage: "this host's labels, k=v (repeatable or comma separated)", EnvVars: envVars("labels")},
	}
}

// hostIdentity returns the host's name and labels from the flags.
func hostIdentity(c *cli.Context) (name string, labels map[string]string, err error) {
	name = c.String("node-name")
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return "", nil, fmt.Errorf("host name: %w (set --node-name)", err)
		}
	}
	labels = map[string]string{}
	for _, item := range c.StringSlice("labels") {
		for _, kv := range strings.Split(item, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return "", nil, usageErrorf(c, "invalid value %q for flag --labels: want key=value", kv)
			}
			labels[k] = v
		}
	}
	return name, labels, nil
}
