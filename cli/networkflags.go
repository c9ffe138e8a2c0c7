package cli

import (
	"fmt"
	"net/netip"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/netplan"
)

// networkFlags are `kelpie agent`'s cluster networking flags: the pod range
// every host takes a slice of. They must be the same on every host.
func networkFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cluster-cidr", Usage: "the pod range of the whole cluster, cut into a slice per host (the same on every host)", Value: netplan.DefaultClusterCIDR.String(), EnvVars: envVars("cluster-cidr")},
		&cli.StringFlag{Name: "pod-network-mode", Usage: "how pods reach the other hosts' pods: auto (host-gw routes to peers on a shared link, VXLAN to the others), host-gw or vxlan", Value: string(netplan.DefaultPodNetworkMode), EnvVars: envVars("pod-network-mode")},
		&cli.IntFlag{Name: "pod-slice-size", Usage: "prefix length of each host's slice of --cluster-cidr", Value: netplan.DefaultSliceBits, EnvVars: envVars("pod-slice-size")},
		&cli.StringFlag{Name: "service-cidr", Usage: "the range of Service virtual IPs (the same on every host)", Value: netplan.DefaultServiceCIDR.String(), EnvVars: envVars("service-cidr")},
		&cli.StringFlag{Name: "service-node-port-range", Usage: "the range of NodePort Service ports, MIN-MAX (the same on every host)", Value: netplan.DefaultNodePorts.String(), EnvVars: envVars("service-node-port-range")},
		&cli.StringFlag{Name: "cluster-domain", Usage: "the DNS domain of Service names (NAME.NS.svc.DOMAIN; the same on every host)", Value: netplan.DefaultClusterDomain, EnvVars: envVars("cluster-domain")},
		&cli.StringFlag{Name: "node-ip", Usage: "this host's address where NodePorts answer (default: the gossip address in a cluster, the host's non-loopback IPv4 addresses on its own)", EnvVars: envVars("node-ip")},
	}
}

// networkConfig returns the networking configuration the flags ask for,
// and the pod network mode.
func networkConfig(c *cli.Context) (netplan.Config, netplan.PodNetworkMode, error) {
	var cfg netplan.Config
	mode, err := netplan.ParsePodNetworkMode(c.String("pod-network-mode"))
	if err != nil {
		return cfg, "", usageErrorf(c, "%s", fmt.Sprint(err))
	}
	p, err := netip.ParsePrefix(c.String("cluster-cidr"))
	if err != nil {
		return cfg, "", usageErrorf(c, "flag --cluster-cidr %q: want an IPv4 network such as 10.244.0.0/16", c.String("cluster-cidr"))
	}
	cfg.ClusterCIDR = p
	cfg.SliceBits = c.Int("pod-slice-size")
	if cfg.ServiceCIDR, err = netip.ParsePrefix(c.String("service-cidr")); err != nil {
		return cfg, "", usageErrorf(c, "flag --service-cidr %q: want an IPv4 network such as 10.96.0.0/16", c.String("service-cidr"))
	}
	if cfg.NodePorts, err = netplan.ParsePortRange(c.String("service-node-port-range")); err != nil {
		return cfg, "", usageErrorf(c, "flag --service-node-port-range: %s", fmt.Sprint(err))
	}
	cfg.ClusterDomain = c.String("cluster-domain")
	if err := cfg.Validate(); err != nil {
		return cfg, "", usageErrorf(c, "%s", fmt.Sprint(err))
	}
	return cfg, mode, nil
}

// nodeIP parses --node-ip; "" (the default) leaves the choice to the
// agent.
func nodeIP(c *cli.Context) (netip.Addr, error) {
	s := c.String("node-ip")
	if s == "" {
		return netip.Addr{}, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, usageErrorf(c, "flag --node-ip %q: want an IPv4 address of this host", s)
	}
	return ip, nil
}
