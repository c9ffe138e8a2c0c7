package host

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/network"
)

// Host files the pods' /etc files are derived from.
const (
	hostHostsFile    = "/etc/hosts"
	hostResolvConf   = "/etc/resolv.conf"
	resolvedUpstream = "/run/systemd/resolve/resolv.conf" // systemd-resolved's real upstream servers
)

// etcFiles are the paths of a pod's /etc/hosts, /etc/hostname and
// /etc/resolv.conf on the host, bind-mounted into each of its containers.
type etcFiles struct {
	hosts, hostname, resolvConf string
}

// clusterDNS is the cluster DNS pods with their own network namespace use:
// the agent's DNS server on the pod bridge's gateway. The zero value means
// none (kelpie apply): pods get the host's resolvers.
type clusterDNS struct {
	nameserver netip.Addr
	domain     string
}

// writeEtc writes the /etc files of pod p, whose sandbox is sb, into the
// pod's directory dir, rewriting a file only when its content changes.
func writeEtc(dir string, p *reconciler.Pod, sb network.Sandbox, cdns clusterDNS) (etcFiles, error) {
	etc := filepath.Join(dir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return etcFiles{}, err
	}
	f := etcFiles{
		hosts:      filepath.Join(etc, "hosts"),
		hostname:   filepath.Join(etc, "hostname"),
		resolvConf: filepath.Join(etc, "resolv.conf"),
	}
	hostResolv, err := readHostFile(hostResolvConf)
	if err != nil {
		return etcFiles{}, err
	}
	upstream, err := readHostFile(resolvedUpstream)
	if err != nil {
		return etcFiles{}, err
	}
	var hosts []byte
	hostname := podHostname(p)
	if p.HostNetwork {
		// A hostNetwork pod has the host's names, as the kubelet gives it.
		if hosts, err = readHostFile(hostHostsFile); err != nil {
			return etcFiles{}, err
		}
		if hostname, err = os.Hostname(); err != nil {
			return etcFiles{}, fmt.Errorf("host name: %w", err)
		}
	} else {
		hosts = podHosts(hostname, sb.IP)
	}
	for _, w := range []struct {
		path string
		data []byte
	}{
		{f.hosts, hosts},
		{f.hostname, []byte(hostname + "\n")},
		{f.resolvConf, podResolv(hostResolv, upstream, p, cdns)},
	} {
		if err := writeEtcFile(w.path, w.data, 0o644); err != nil {
			return etcFiles{}, err
		}
	}
	return f, nil
}

// podHostname is the pod's host name: Pod.Hostname, or its name cut to 63
// characters.
func podHostname(p *reconciler.Pod) string {
	if p.Hostname != "" {
		return p.Hostname
	}
	h := p.Name
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// podHosts is the /etc/hosts of a pod with its own network namespace: the
// loopback names, and the pod's host name on its IP when it has one.
func podHosts(hostname, ip string) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-style hosts file written by kelpie.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	if addr, err := netip.ParseAddr(ip); err == nil {
		fmt.Fprintf(&b, "%s\t%s\n", addr, hostname)
	}
	return b.Bytes()
}

// podResolvConf derives a pod's resolv.conf from the host's. A pod in its
// own network namespace cannot reach a resolver on the host's loopback
// (systemd-resolved's 127.0.0.53, a local dnsmasq): such nameservers are
// replaced by systemd-resolved's upstream servers when it has some, and
// dropped otherwise. search and options lines are kept. A hostNetwork pod
// gets the host's file as it is.
func podResolvConf(host, upstream []byte, hostNetwork bool) []byte {
	if hostNetwork {
		return host
	}
	var kept, other []string
	dropped := false
	for _, line := range resolvLines(host) {
		if ns, ok := resolvNameserver(line); ok {
			if ns.IsLoopback() {
				dropped = true
				continue
			}
			kept = append(kept, line)
			continue
		}
		other = append(other, line)
	}
	if dropped && len(kept) == 0 {
		for _, line := range resolvLines(upstream) {
			if ns, ok := resolvNameserver(line); ok && !ns.IsLoopback() {
				kept = append(kept, line)
			}
		}
	}
	var b bytes.Buffer
	b.WriteString("# Written by kelpie from the host's resolv.conf.\n")
	if len(kept) == 0 && dropped {
		b.WriteString("# The host's nameservers are on its loopback, which pods cannot reach.\n")
	}
	for _, l := range other {
		if strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "" {
			continue
		}
		b.WriteString(l + "\n")
	}
	for _, l := range kept {
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}

// podResolv is a pod's resolv.conf: the cluster DNS with the Kubernetes
// search path when there is one and the pod has its own network namespace,
// else derived from the host's (podResolvConf).
func podResolv(host, upstream []byte, p *reconciler.Pod, cdns clusterDNS) []byte {
	if p.HostNetwork || !cdns.nameserver.IsValid() || cdns.domain == "" {
		return podResolvConf(host, upstream, p.HostNetwork)
	}
	var search []string
	for _, line := range resolvLines(host) {
		if f := strings.Fields(line); len(f) > 1 && (f[0] == "search" || f[0] == "domain") {
			search = append(search, f[1:]...)
		}
	}
	return netplan.PodResolvConf(cdns.nameserver, p.Namespace, cdns.domain, search)
}

// resolvNameserver parses a "nameserver ADDR" line.
func resolvNameserver(line string) (netip.Addr, bool) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "nameserver" {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(strings.SplitN(f[1], "%", 2)[0])
	return addr, err == nil
}

// resolvLines splits a file into lines.
func resolvLines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// readHostFile reads a file that may not exist (nil then).
func readHostFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	return b, nil
}

// writeEtcFile replaces path with data (atomicfile.WriteFile: a reader, or
// a crash, sees the old content or the new one), unless path holds data
// already.
func writeEtcFile(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return atomicfile.WriteFile(path, data, mode)
}
