package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// attachment is one interface of a pod's sandbox: a CNI network joined
// under an interface name.
type attachment struct {
	network string // kelpie Network name; "" for the default and loopback networks
	cniName string
	ifName  string
}

// podAttachments lists a pod's interfaces in the order they are added:
// lo, the default network as eth0, then networks as eth1, eth2, ….
func podAttachments(networks []string) []attachment {
	out := []attachment{
		{cniName: cniLoopbackNetwork, ifName: cniLoopbackIfName},
		{cniName: cniDefaultNetwork, ifName: cniDefaultInterface},
	}
	for i, n := range networks {
		out = append(out, attachment{network: n, cniName: cniNetworkName(n), ifName: "eth" + strconv.Itoa(i+1)})
	}
	return out
}

// ContainerID is the CNI container ID of a pod: "namespace_name", which
// names its lease files, cache entries and iptables comments.
func ContainerID(namespace, name string) string { return statedir.Key(namespace, name) }

// cniReservedArgs are CNI_ARGS keys with a meaning to plugins (host-local
// takes IP=); pod labels of these names are not passed.
var cniReservedArgs = map[string]bool{
	"IgnoreUnknown": true, "IP": true, "MAC": true, "K8S_POD_NAMESPACE": true,
	"K8S_POD_NAME": true, "K8S_POD_INFRA_CONTAINER_ID": true, "K8S_POD_UID": true,
}

// cniArgs are a pod's CNI_ARGS: IgnoreUnknown=1 (plugins refuse unknown keys
// otherwise), the Kubernetes-style pod identity, and the pod's labels,
// sorted. A label whose key or value cannot be written as KEY=VALUE; is left
// out.
func cniArgs(p reconciler.Pod) [][2]string {
	id := ContainerID(p.Namespace, p.Name)
	args := [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", p.Namespace},
		{"K8S_POD_NAME", p.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", id},
	}
	keys := make([]string, 0, len(p.Labels))
	for k := range p.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := p.Labels[k]
		if cniReservedArgs[k] || k == "" || strings.ContainsAny(k+v, ";=") {
			continue
		}
		args = append(args, [2]string{k, v})
	}
	return args
}

// Setup creates, or completes, the network sandbox of p and returns it. It is
// idempotent and crash-safe:
//
//  1. a sandbox record (networks, port mappings) is written first;
//  2. the network namespace is created, or reused when it is mounted;
//  3. each network is added, unless libcni's cache shows it added to this
//     very namespace already, in which case its cached result is used.
//
// A namespace file that is not mounted is one whose creation was
// interrupted or whose mount went with a reboot: every attachment found for
// the pod is deleted (freeing its IP) before a new namespace is made. An
// attachment with no cached result in a mounted namespace may be half made:
// it is deleted before it is added again. hostNetwork pods get Sandbox{}.
func (h *Host) Setup(ctx context.Context, p reconciler.Pod) (Sandbox, error) {
	if p.HostNetwork {
		return Sandbox{}, nil
	}
	key := reconciler.JoinName(p.Namespace, p.Name)
	if err := statedir.CheckPod(p.Namespace, p.Name); err != nil {
		return Sandbox{}, fmt.Errorf("set up sandbox of pod %s: %w", key, err)
	}
	if err := h.ensureDefaults(); err != nil {
		return Sandbox{}, fmt.Errorf("set up sandbox of pod %s: %w", key, err)
	}
	atts := podAttachments(p.Networks)
	lists := make([]*libcni.NetworkConfigList, len(atts))
	for i, a := range atts {
		list, err := h.loadList(a.cniName)
		if err != nil {
			return Sandbox{}, fmt.Errorf("set up sandbox of pod %s: %w", key, err)
		}
		if list == nil {
			return Sandbox{}, fmt.Errorf("set up sandbox of pod %s: network %s is not set up: %w", key, a.network, errdefs.ErrFailedPrecondition)
		}
		lists[i] = list
	}
	rec := sandboxRecord{
		Labels:       statedir.Labels(reconciler.LabelPod, key, reconciler.LabelPodNetworks, strings.Join(p.Networks, ",")),
		Networks:     p.Networks,
		PortMappings: podPortMappings(p),
	}
	if err := h.writeRecord(p.Namespace, p.Name, rec); err != nil {
		return Sandbox{}, fmt.Errorf("set up sandbox of pod %s: %w", key, err)
	}

	path := h.netnsPath(p.Namespace, p.Name)
	mounted, err := netnsMounted(path)
	if err != nil {
		return Sandbox{}, fmt.Errorf("set up sandbox of pod %s: %w", key, err)
	}
	if !mounted {
		if _, err := os.Lstat(path); err == nil {
			// Stale: whatever was attached to the old namespace is gone
			// with it but for its IP leases and host rules. Free them.
			if err := h.delAll(ctx, p.Namespace, p.Name, p.Networks, rec); err != nil {
				return Sandbox{}, fmt.Errorf("set up sandbox of pod %s: clean up stale namespace: %w", key, err)
			}
		}
		if err := netnsCreate(path); err != nil {
			return Sandbox{}, fmt.Errorf("set up sandbox of pod %s: %w", key, err)
		}
	}

	sb := Sandbox{NetNSPath: path, IPs: map[string]string{}, Ready: true}
	args := cniArgs(p)
	for i, a := range atts {
		rt := h.runtimeConf(p.Namespace, p.Name, path, a, args, rec.PortMappings)
		res, err := h.attach(ctx, lists[i], rt, mounted)
		if err != nil {
			return Sandbox{}, fmt.Errorf("cni add %s to pod %s: %w", a.cniName, key, err)
		}
		ip := resultIPv4(res, a.ifName)
		switch {
		case a.cniName == cniDefaultNetwork:
			if ip == "" {
				return Sandbox{}, fmt.Errorf("cni add %s to pod %s: the result has no IPv4 address for %s", a.cniName, key, a.ifName)
			}
			sb.IP = ip
		case a.network != "":
			sb.IPs[a.network] = ip
		}
	}
	return sb, nil
}

// attach adds the network list to the pod, or returns its cached result
// when the namespace was there before (reused) and the cache has one.
func (h *Host) attach(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf, reused bool) (types.Result, error) {
	if reused {
		if res, err := h.cni.GetNetworkListCachedResult(list, rt); err == nil && res != nil {
			return res, nil
		}
		// Maybe half added before a crash: undo it first.
		if err := h.delNetworkList(ctx, list, rt); err != nil {
			return nil, fmt.Errorf("delete partial attachment: %w", err)
		}
	}
	res, err := h.cni.AddNetworkList(ctx, list, rt)
	if err != nil && ctx.Err() == nil {
		// A leftover the checks above could not see (say, a lease left by
		// an ADD interrupted before libcni cached it, in a namespace
		// deleted by hand): delete and try once more.
		if derr := h.delNetworkList(ctx, list, rt); derr != nil {
			return nil, errors.Join(err, fmt.Errorf("delete after failed add: %w", derr))
		}
		res, err = h.cni.AddNetworkList(ctx, list, rt)
	}
	return res, err
}

// runtimeConf is the libcni runtime configuration of attachment a of a pod.
// Port mappings go to the default network only.
func (h *Host) runtimeConf(namespace, name, netns string, a attachment, args [][2]string, ports []cniPortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: ContainerID(namespace, name),
		NetNS:       netns,
		IfName:      a.ifName,
		Args:        args,
	}
	if a.cniName == cniDefaultNetwork && len(ports) > 0 {
		rt.CapabilityArgs = map[string]interface{}{"portMappings": ports}
	}
	return rt
}

// loadList reads the CNI network cniName as libcni takes it; nil when there
// is no such network.
func (h *Host) loadList(cniName string) (*libcni.NetworkConfigList, error) {
	_, raw, ok, err := h.readConfList(cniName)
	if err != nil || !ok {
		return nil, err
	}
	list, err := libcni.ConfListFromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("parse CNI network %s: %w", cniName, err)
	}
	return list, nil
}
