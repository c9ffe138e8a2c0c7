package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// libcni writes a cache entry (CNICacheDir/results/NETWORK-ID-IFNAME) in
// place, after the plugins' ADD succeeded: a crash or a full disk during
// that write leaves it torn, and libcni then skips it as if the pod had
// never joined the network. Sandboxes would report such a pod's sandbox
// gone, and the planner would replace a pod that runs well. Instead an
// unreadable entry is refused with a log record naming it and, when the
// host shows the attachment whole (the pod's namespace is mounted, its
// interface there holds the address host-local leased to the pod and
// interface, or 127.0.0.1 for loopback), written anew from what the host
// shows. An entry that is missing is not rebuilt: ADD may have stopped
// between two plugins of the chain, and only the cache would tell.

// cacheKind is the kind of libcni's cache entries (libcni.CNICacheV1).
const cacheKind = libcni.CNICacheV1

// cacheEntry is a libcni cache entry as libcni writes and reads it.
type cacheEntry struct {
	Kind           string         `json:"kind"`
	ContainerID    string         `json:"containerId"`
	Config         []byte         `json:"config"`
	IfName         string         `json:"ifName"`
	NetworkName    string         `json:"networkName"`
	NetNS          string         `json:"netns,omitempty"`
	CniArgs        [][2]string    `json:"cniArgs,omitempty"`
	CapabilityArgs map[string]any `json:"capabilityArgs,omitempty"`
	Result         map[string]any `json:"result,omitempty"`
}

// cacheEntryPath is libcni's cache file of one attachment.
func cacheEntryPath(cacheDir, cniName, id, ifName string) string {
	return filepath.Join(cacheDir, "results", cniName+"-"+id+"-"+ifName)
}

// checkCacheEntry returns nil when b is a cache entry libcni can use for
// attachment (cniName, id, ifName), else what is wrong with it.
func checkCacheEntry(b []byte, cniName, id, ifName string) error {
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	switch {
	case e.Kind != cacheKind:
		return fmt.Errorf("kind %q, want %q", e.Kind, cacheKind)
	case e.ContainerID != id || e.NetworkName != cniName || e.IfName != ifName:
		return fmt.Errorf("it names %s/%s/%s", e.NetworkName, e.ContainerID, e.IfName)
	case len(e.Config) == 0 || e.Result == nil:
		return errors.New("no config or no result")
	}
	if _, err := libcni.ConfListFromBytes(e.Config); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// rebuiltCacheEntry is the cache entry of an attachment whose entry was
// lost: config is the network's conflist, netns the pod's namespace,
// ifc the interface (name and MAC) and addr its address (with its prefix
// length) there. The pod's labels are not in its CNI args: no plugin of
// kelpie's uses them.
func rebuiltCacheEntry(config []byte, cniName, id, namespace, name, netns string, ifc net.Interface, addr *net.IPNet, ports []cniPortMapping) ([]byte, error) {
	list, err := libcni.ConfListFromBytes(config)
	if err != nil {
		return nil, fmt.Errorf("config of network %s: %w", cniName, err)
	}
	zero := 0
	res := &types100.Result{
		CNIVersion: list.CNIVersion,
		Interfaces: []*types100.Interface{{Name: ifc.Name, Mac: ifc.HardwareAddr.String(), Sandbox: netns}},
		IPs:        []*types100.IPConfig{{Interface: &zero, Address: *addr}},
	}
	if !strings.HasPrefix(list.CNIVersion, "1.") {
		// The result is converted to the config's version when read.
		res.CNIVersion = types100.ImplementedSpecVersion
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	e := cacheEntry{Kind: cacheKind, ContainerID: id, Config: config, IfName: ifc.Name, NetworkName: cniName, NetNS: netns,
		CniArgs: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", namespace}, {"K8S_POD_NAME", name}, {"K8S_POD_INFRA_CONTAINER_ID", id}}}
	if cniName == cniDefaultNetwork && len(ports) > 0 {
		e.CapabilityArgs = map[string]any{"portMappings": ports}
	}
	if err := json.Unmarshal(raw, &e.Result); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// leasedIPs are the addresses host-local's lease files under dir (one per
// address, holding "ID\nIFNAME") give container id's interface ifName.
func leasedIPs(dir, id, ifName string) []string {
	var out []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if net.ParseIP(e.Name()) == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		lid, lif, _ := strings.Cut(string(b), "\n")
		if strings.TrimSpace(lid) == id && (lif == "" || strings.TrimSpace(lif) == ifName) {
			out = append(out, e.Name())
		}
	}
	return out
}

// repairCache checks the cache entries of the attachments the pod's
// sandbox record names that libcni did not list (cached holds the
// "NETWORK/IFNAME" it did), and rebuilds those that are there but
// unreadable, when the host shows the attachment whole. It returns the
// attachments it rebuilt. Failures are logged, not returned: the sandbox
// is then reported not ready and made again.
func (h *Host) repairCache(namespace, name string, cached map[string]bool) []*libcni.NetworkAttachment {
	key := reconciler.JoinName(namespace, name)
	id := ContainerID(namespace, name)
	rec, err := h.readRecord(namespace, name)
	if err != nil {
		return nil
	}
	var out []*libcni.NetworkAttachment
	for _, a := range podAttachments(rec.Networks) {
		if cached[a.cniName+"/"+a.ifName] {
			continue
		}
		path := cacheEntryPath(h.cfg.CNICacheDir, a.cniName, id, a.ifName)
		b, err := os.ReadFile(path)
		if err != nil {
			continue // missing: see above
		}
		bad := checkCacheEntry(b, a.cniName, id, a.ifName)
		if bad == nil {
			continue // readable: libcni skipped it for a reason of its own
		}
		log := h.cfg.Log.With("pod", key, "network", a.cniName, "interface", a.ifName, "entry", path, "problem", bad.Error())
		att, err := h.rebuildCacheEntry(namespace, name, a, rec, path)
		if err != nil {
			log.Warn("CNI cache entry unreadable, refused; the pod's sandbox will be made again", "error", err)
			continue
		}
		log.Warn("CNI cache entry unreadable, refused and rebuilt from the host's lease and the pod's namespace")
		out = append(out, att)
	}
	return out
}

// rebuildCacheEntry writes the cache entry of attachment a of the pod
// anew, when its namespace is mounted and its interface there holds the
// address host-local leased to it (127.0.0.1 for loopback).
func (h *Host) rebuildCacheEntry(namespace, name string, a attachment, rec sandboxRecord, path string) (*libcni.NetworkAttachment, error) {
	id := ContainerID(namespace, name)
	netns := h.netnsPath(namespace, name)
	if ok, err := netnsMounted(netns); err != nil || !ok {
		return nil, fmt.Errorf("the pod's network namespace %s is not mounted (%v)", netns, err)
	}
	_, config, ok, err := h.readConfList(a.cniName)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("network %s has no config", a.cniName)
	}
	want := "127.0.0.1"
	if a.cniName != cniLoopbackNetwork {
		ips := leasedIPs(filepath.Join(h.leaseDir, a.cniName), id, a.ifName)
		if len(ips) != 1 {
			return nil, fmt.Errorf("host-local leases %v to the pod's %s, want one", ips, a.ifName)
		}
		want = ips[0]
	}
	var ifc net.Interface
	var addr *net.IPNet
	err = withNetNS(netns, func() error {
		i, err := net.InterfaceByName(a.ifName)
		if err != nil {
			return err
		}
		addrs, err := i.Addrs()
		if err != nil {
			return err
		}
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok && n.IP.String() == want {
				ifc, addr = *i, n
				return nil
			}
		}
		return fmt.Errorf("%s has %v, not %s", a.ifName, addrs, want)
	})
	if err != nil {
		return nil, fmt.Errorf("the pod's interface: %w", err)
	}
	b, err := rebuiltCacheEntry(config, a.cniName, id, namespace, name, netns, ifc, addr, rec.PortMappings)
	if err != nil {
		return nil, err
	}
	if err := statedir.WriteAtomic(path, b, 0o600); err != nil {
		return nil, err
	}
	return &libcni.NetworkAttachment{ContainerID: id, Network: a.cniName, IfName: a.ifName, Config: config, NetNS: netns}, nil
}
