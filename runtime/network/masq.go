package network

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// The bridge plugin (1.1.x, Debian 12's) learns which masquerade rules to
// delete from the addresses of the pod's interface, inside its namespace.
// When the namespace is gone, its DEL frees the IP but leaves the rules:
//
//	-A POSTROUTING -s IP/32 -m comment --comment "name: NET id: ID" -j CNI-…
//	-N CNI-… (the pod's chain)
//
// masqLeftovers and removeMasq find and delete them exactly as the plugin
// would have, from the addresses in libcni's cache and host-local's leases.

// masqRule is one pod address's masquerade rule and chain.
type masqRule struct {
	ip      string
	chain   string
	comment string
}

// masqLeftovers lists the masquerade rules the bridge plugin made for
// container id on the network whose config is conf, when that network
// masquerades; it must be called before the DEL, which forgets the
// addresses.
func (h *Host) masqLeftovers(conf []byte, cniName, id, ifName string) []masqRule {
	var c cniConfList
	if err := json.Unmarshal(conf, &c); err != nil || len(c.Plugins) == 0 || c.Plugins[0].Type != "bridge" || !c.Plugins[0].IPMasq {
		return nil
	}
	ips := map[string]bool{}
	if list, err := libcni.ConfListFromBytes(conf); err == nil {
		res, err := h.cni.GetNetworkListCachedResult(list, &libcni.RuntimeConf{ContainerID: id, IfName: ifName})
		if err == nil && res != nil {
			if ip := resultIPv4(res, ifName); ip != "" {
				ips[ip] = true
			}
		}
	}
	// host-local's lease files hold "ID\nIFNAME": they outlive a cache entry
	// lost to a crash.
	for _, ip := range leasedIPs(filepath.Join(h.leaseDir, cniName), id, ifName) {
		ips[ip] = true
	}
	sum := sha512.Sum512([]byte(cniName + id))
	chain := fmt.Sprintf("CNI-%x", sum)[:28] // the plugins' utils.FormatChainName
	comment := fmt.Sprintf("name: %q id: %q", cniName, id)
	var out []masqRule
	for ip := range ips {
		out = append(out, masqRule{ip: ip, chain: chain, comment: comment})
	}
	return out
}

// removeMasq deletes the rules and chains, and is content when they are
// gone already.
func removeMasq(ctx context.Context, rules []masqRule) error {
	var errs []error
	chains := map[string]bool{}
	for _, r := range rules {
		chains[r.chain] = true
		// The plugin writes the source as an address; older ones as IP/32.
		for _, src := range []string{r.ip, r.ip + "/32"} {
			if err := iptables(ctx, "-t", "nat", "-D", "POSTROUTING", "-s", src, "-j", r.chain, "-m", "comment", "--comment", r.comment); err != nil && !iptablesNotExist(err) {
				errs = append(errs, err)
			}
		}
	}
	for chain := range chains {
		for _, op := range []string{"-F", "-X"} {
			if err := iptables(ctx, "-t", "nat", op, chain); err != nil && !iptablesNotExist(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// iptables runs the iptables the CNI plugins use (the first on PATH),
// waiting for the xtables lock.
func iptables(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// iptablesNotExist reports an iptables error that says the rule or chain is
// not there.
func iptablesNotExist(err error) bool {
	s := err.Error()
	return strings.Contains(s, "does a matching rule exist") || strings.Contains(s, "No chain/target/match by that name") ||
		strings.Contains(s, "does not exist") || strings.Contains(s, "Bad rule")
}
