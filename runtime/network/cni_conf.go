package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// CNI configuration lists kelpie writes. Each is a file NAME.conflist in the
// state dir's cni/net.d, where NAME is the CNI network name:
//
//	kelpie            the host's default pod network (bridge, host-local, portmap)
//	kelpie-loopback   brings up "lo" in every pod
//	kelpie-net-NET    the kelpie Network NET
//
// Every list carries kelpie's labels in a top-level "kelpieLabels" object,
// which libcni and the plugins ignore; Networks() reads them back.
const (
	cniVersion          = "1.0.0" // the newest spec version Debian 12's plugins (1.1.1) speak
	cniDefaultNetwork   = "kelpie"
	cniLoopbackNetwork  = "kelpie-loopback"
	cniNetworkPrefix    = "kelpie-net-"
	cniConfExt          = ".conflist"
	cniBridgePrefix     = "kn-" // bridges of kelpie Networks; IFNAMSIZ leaves 12 more characters
	cniIfNameMax        = 15    // IFNAMSIZ - 1
	cniDefaultInterface = "eth0"
	cniLoopbackIfName   = "lo"
)

// cniConfList is the JSON of a CNI configuration list.
type cniConfList struct {
	CNIVersion string            `json:"cniVersion"`
	Name       string            `json:"name"`
	Labels     map[string]string `json:"kelpieLabels"`
	Plugins    []cniPlugin       `json:"plugins"`
}

// cniPlugin holds the fields of the plugins kelpie configures; omitempty
// keeps each plugin's configuration to the fields it knows.
type cniPlugin struct {
	Type         string          `json:"type"`
	Bridge       string          `json:"bridge,omitempty"`
	IsGateway    bool            `json:"isGateway,omitempty"`
	IPMasq       bool            `json:"ipMasq,omitempty"`
	HairpinMode  bool            `json:"hairpinMode,omitempty"`
	ForceAddress bool            `json:"forceAddress,omitempty"`
	Master       string          `json:"master,omitempty"`
	Mode         string          `json:"mode,omitempty"`
	SNAT         *bool           `json:"snat,omitempty"`
	Capabilities map[string]bool `json:"capabilities,omitempty"`
	IPAM         *cniIPAM        `json:"ipam,omitempty"`
}

// cniIPAM is host-local's configuration.
type cniIPAM struct {
	Type    string       `json:"type"`
	Ranges  [][]cniRange `json:"ranges"`
	Routes  []cniRoute   `json:"routes,omitempty"`
	DataDir string       `json:"dataDir"`
}

type cniRange struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway,omitempty"`
}

type cniRoute struct {
	Dst string `json:"dst"`
}

// bytes encodes the list as written to disk.
func (c *cniConfList) bytes() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("encode CNI conflist %s: %v", c.Name, err)) // plain structs always encode
	}
	return append(b, '\n')
}

// cniConfPath is the file of the CNI network cniName.
func cniConfPath(confDir, cniName string) string {
	return filepath.Join(confDir, cniName+cniConfExt)
}

// cniNetworkName is the CNI network name of the kelpie Network name.
func cniNetworkName(name string) string { return cniNetworkPrefix + name }

// cniBridgeName derives the bridge of a kelpie Network from its name: "kn-"
// and the name when that fits IFNAMSIZ, else "kn-", the name's first six
// characters, "-" and five hex digits of its hash, so that long names that
// share a prefix still get bridges of their own.
func cniBridgeName(name string) string {
	if len(cniBridgePrefix)+len(name) <= cniIfNameMax {
		return cniBridgePrefix + name
	}
	sum := sha256.Sum256([]byte(name))
	return cniBridgePrefix + name[:6] + "-" + hex.EncodeToString(sum[:])[:5]
}

// defaultConfList is the host's default pod network: a bridge with this
// host's pod subnet, a default route through it, masquerade for traffic
// leaving the subnet when masq (without it the agent's nftables table
// masquerades what leaves the cluster pod range, and traffic to other
// hosts' pods keeps its source address), and portmap for hostPorts.
func defaultConfList(bridge, subnet, leaseDir string, masq bool) *cniConfList {
	snat := true // lets a pod reach its own hostPort through the host (hairpin)
	return &cniConfList{
		CNIVersion: cniVersion,
		Name:       cniDefaultNetwork,
		Labels:     statedir.Labels(),
		Plugins: []cniPlugin{
			{
				Type:         "bridge",
				Bridge:       bridge,
				IsGateway:    true,
				IPMasq:       masq,
				HairpinMode:  true,
				ForceAddress: true,
				IPAM: &cniIPAM{
					Type:    "host-local",
					Ranges:  [][]cniRange{{{Subnet: subnet}}},
					Routes:  []cniRoute{{Dst: "0.0.0.0/0"}},
					DataDir: leaseDir,
				},
			},
			{Type: "portmap", SNAT: &snat, Capabilities: map[string]bool{"portMappings": true}},
		},
	}
}

// loopbackConfList brings up a pod's loopback interface.
func loopbackConfList() *cniConfList {
	return &cniConfList{
		CNIVersion: cniVersion,
		Name:       cniLoopbackNetwork,
		Labels:     statedir.Labels(),
		Plugins:    []cniPlugin{{Type: "loopback"}},
	}
}

// networkConfList is the CNI configuration of a kelpie Network. Pods join
// it as a second interface, so it never routes their default traffic: a
// bridge only gets the gateway address (and masquerade) when not isolated,
// and macvlan and ipvlan get no routes at all.
func networkConfList(n reconciler.Network, leaseDir string) (*cniConfList, error) {
	if err := validateNetwork(n); err != nil {
		return nil, err
	}
	ipam := &cniIPAM{
		Type:    "host-local",
		Ranges:  [][]cniRange{{{Subnet: n.Subnet, Gateway: n.Gateway}}},
		DataDir: leaseDir,
	}
	var plugin cniPlugin
	switch n.Type {
	case "bridge":
		plugin = cniPlugin{
			Type:         "bridge",
			Bridge:       cniBridgeName(n.Name),
			IsGateway:    !n.Isolated,
			IPMasq:       !n.Isolated,
			HairpinMode:  true,
			ForceAddress: true,
			IPAM:         ipam,
		}
	case "macvlan":
		plugin = cniPlugin{Type: "macvlan", Master: n.Master, Mode: "bridge", IPAM: ipam}
	case "ipvlan":
		plugin = cniPlugin{Type: "ipvlan", Master: n.Master, Mode: "l2", IPAM: ipam}
	}
	return &cniConfList{
		CNIVersion: cniVersion,
		Name:       cniNetworkName(n.Name),
		Labels: statedir.Labels(
			reconciler.LabelNetwork, n.Name,
			reconciler.LabelSpecHash, n.Hash,
		),
		Plugins: []cniPlugin{plugin},
	}, nil
}

// validateNetwork rejects a Network kelpie cannot turn into a CNI network.
func validateNetwork(n reconciler.Network) error {
	if err := validateNetworkName(n.Name); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("network %s: %s: %w", n.Name, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
	}
	_, subnet, err := net.ParseCIDR(n.Subnet)
	if err != nil {
		return bad("subnet %q is not a CIDR", n.Subnet)
	}
	if n.Gateway != "" {
		gw := net.ParseIP(n.Gateway)
		if gw == nil || !subnet.Contains(gw) {
			return bad("gateway %q is not an address in subnet %s", n.Gateway, n.Subnet)
		}
	}
	switch n.Type {
	case "bridge":
	case "macvlan", "ipvlan":
		if n.Master == "" {
			return bad("a %s network needs a master interface", n.Type)
		}
		if len(n.Master) > cniIfNameMax || strings.ContainsAny(n.Master, "/ ") {
			return bad("invalid master interface %q", n.Master)
		}
	default:
		return bad("type %q is not bridge, macvlan or ipvlan", n.Type)
	}
	return nil
}

// validateNetworkName rejects a Network name that cannot be part of a CNI
// network name and a file name: only letters, digits, '-', '.' and '_', not
// starting with '.'.
func validateNetworkName(name string) error {
	bad := fmt.Errorf("network %q: invalid name: only letters, digits, '-', '.' and '_', not starting with '.': %w", name, errdefs.ErrInvalidArgument)
	if name == "" || strings.HasPrefix(name, ".") {
		return bad
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return bad
		}
	}
	return nil
}
