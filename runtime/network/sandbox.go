package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// sandboxRecord is what setup writes, before it creates anything, to
// StateDir/sandboxes/NS_NAME.json: the networks the pod joins and its port
// mappings. teardown reads it to undo everything even when libcni's cache
// lost an entry (a crash between a plugin's ADD and the cache write) or the
// caller does not know the pod's networks any more.
type sandboxRecord struct {
	Labels       map[string]string `json:"labels"`
	Networks     []string          `json:"networks,omitempty"`
	PortMappings []cniPortMapping  `json:"portMappings,omitempty"`
}

// cniPortMapping is an entry of the portMappings capability (portmap).
type cniPortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func (h *Host) netnsPath(namespace, name string) string {
	return filepath.Join(h.netnsDir, statedir.Key(namespace, name))
}

func (h *Host) recordPath(namespace, name string) string {
	return filepath.Join(h.cfg.StateDir, statedir.Sandboxes, statedir.Key(namespace, name)+".json")
}

// writeRecord writes the pod's sandbox record atomically, unless it holds rec
// already.
func (h *Host) writeRecord(namespace, name string, rec sandboxRecord) error {
	want, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	path := h.recordPath(namespace, name)
	if have, err := os.ReadFile(path); err == nil && string(have) == string(want) {
		return nil
	}
	return statedir.WriteAtomic(path, want, 0o644)
}

// readRecord reads the pod's sandbox record; the zero record when it has none.
func (h *Host) readRecord(namespace, name string) (sandboxRecord, error) {
	var rec sandboxRecord
	b, err := os.ReadFile(h.recordPath(namespace, name))
	if errors.Is(err, os.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		// A torn record cannot happen (it is written atomically); a
		// corrupted one only loses what teardown finds elsewhere too.
		return sandboxRecord{}, nil
	}
	return rec, nil
}

// Sandboxes maps the key ("namespace/name") of every pod with a network
// namespace or a sandbox record to its Sandbox, read from the namespaces
// and libcni's cache. Ready is false for a sandbox whose creation or removal
// was interrupted; setup completes it and teardown removes it.
func (h *Host) Sandboxes() (map[string]Sandbox, error) {
	out := map[string]Sandbox{}
	keys := map[string]bool{}
	for _, d := range []struct{ dir, suffix string }{
		{h.netnsDir, ""},
		{filepath.Join(h.cfg.StateDir, statedir.Sandboxes), ".json"},
	} {
		entries, err := os.ReadDir(d.dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("list sandboxes: %w", err)
		}
		for _, e := range entries {
			key, ok := strings.CutSuffix(e.Name(), d.suffix)
			if !ok || e.IsDir() {
				continue
			}
			if _, _, ok := statedir.SplitKey(key); ok {
				keys[key] = true
			}
		}
	}
	if len(keys) == 0 {
		return out, nil
	}
	attachments, err := h.cni.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: CNI cache: %w", err)
	}
	byID := map[string][]*libcni.NetworkAttachment{}
	unread, err := h.unreadCacheEntries(attachments)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: CNI cache: %w", err)
	}
	for _, a := range attachments {
		byID[a.ContainerID] = append(byID[a.ContainerID], a)
	}
	for key := range keys {
		ns, name, _ := statedir.SplitKey(key)
		path := h.netnsPath(ns, name)
		mounted, err := netnsMounted(path)
		if err != nil {
			return nil, fmt.Errorf("list sandboxes: %w", err)
		}
		if mounted && slices.ContainsFunc(unread, func(f string) bool { return strings.Contains(f, "-"+key+"-") }) {
			cached := map[string]bool{}
			for _, a := range byID[key] {
				cached[a.Network+"/"+a.IfName] = true
			}
			byID[key] = append(byID[key], h.repairCache(ns, name, cached)...)
		}
		sb := Sandbox{IPs: map[string]string{}}
		if mounted {
			sb.NetNSPath = path
		}
		attached := false
		for _, a := range byID[key] {
			ip := h.cachedIP(a)
			switch {
			case a.Network == cniDefaultNetwork && a.IfName == cniDefaultInterface:
				sb.IP = ip
				attached = true
			case strings.HasPrefix(a.Network, cniNetworkPrefix):
				sb.IPs[strings.TrimPrefix(a.Network, cniNetworkPrefix)] = ip
			}
		}
		sb.Ready = mounted && attached
		out[reconciler.JoinName(ns, name)] = sb
	}
	return out, nil
}

// unreadCacheEntries lists the files of libcni's cache that are none of
// attachments, the entries libcni could read.
func (h *Host) unreadCacheEntries(attachments []*libcni.NetworkAttachment) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(h.cfg.CNICacheDir, "results"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	read := map[string]bool{}
	for _, a := range attachments {
		read[filepath.Base(cacheEntryPath("", a.Network, a.ContainerID, a.IfName))] = true
	}
	var out []string
	for _, e := range entries {
		if !read[e.Name()] && !strings.HasPrefix(e.Name(), statedir.TmpPrefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// cachedIP is the IPv4 address in the cached result of attachment a, or "".
func (h *Host) cachedIP(a *libcni.NetworkAttachment) string {
	list, err := libcni.ConfListFromBytes(a.Config)
	if err != nil {
		return ""
	}
	res, err := h.cni.GetNetworkListCachedResult(list, &libcni.RuntimeConf{ContainerID: a.ContainerID, IfName: a.IfName})
	if err != nil || res == nil {
		return ""
	}
	return resultIPv4(res, a.IfName)
}

// resultIPv4 is the IPv4 address a CNI result gives the pod's interface
// ifName. Results also list host-side interfaces (the bridge, the veth);
// only an address of the sandbox's interface counts, or, when the result
// names no interfaces, the first IPv4 address.
func resultIPv4(res types.Result, ifName string) string {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return ""
	}
	var fallback string
	for _, ipc := range r.IPs {
		if ipc.Address.IP.To4() == nil {
			continue
		}
		if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(r.Interfaces) {
			if fallback == "" {
				fallback = ipc.Address.IP.String()
			}
			continue
		}
		iface := r.Interfaces[*ipc.Interface]
		if iface.Name == ifName && iface.Sandbox != "" {
			return ipc.Address.IP.String()
		}
	}
	return fallback
}

// podPortMappings are the hostPorts of p's containers, as portmap takes them.
func podPortMappings(p reconciler.Pod) []cniPortMapping {
	var out []cniPortMapping
	seen := map[cniPortMapping]bool{}
	for _, cs := range [][]reconciler.Container{p.InitContainers, p.Containers} {
		for _, c := range cs {
			for _, port := range c.Ports {
				if port.HostPort == 0 {
					continue
				}
				proto := strings.ToLower(port.Protocol)
				if proto == "" {
					proto = "tcp"
				}
				m := cniPortMapping{HostPort: port.HostPort, ContainerPort: port.ContainerPort, Protocol: proto}
				if !seen[m] {
					seen[m] = true
					out = append(out, m)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].HostPort != out[j].HostPort {
			return out[i].HostPort < out[j].HostPort
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}
