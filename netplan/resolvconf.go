package netplan

import (
	"fmt"
	"net/netip"
	"strings"
)

// Limits of a pod's search path, as the kubelet's (MaxDNSSearchPaths and
// MaxDNSSearchListChars): glibc 2.26 and later take this many.
const (
	maxSearchPaths = 32
	maxSearchChars = 2048
)

// PodResolvConf returns the resolv.conf of a pod of namespace ns (""
// means "default") whose cluster DNS server is nameserver (its host's
// pod-bridge gateway): the Kubernetes search path NS.svc.DOMAIN
// svc.DOMAIN DOMAIN, then hostSearch (the host's own search domains, as
// the kubelet appends them) while the path stays within 32 domains and
// 2,048 characters, and options ndots:5, so that "web" and "web.shop"
// are tried as cluster names first.
func PodResolvConf(nameserver netip.Addr, ns, domain string, hostSearch []string) []byte {
	if ns == "" {
		ns = "default"
	}
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	search := []string{ns + ".svc." + domain, "svc." + domain, domain}
	chars := len(strings.Join(search, " "))
	seen := map[string]bool{}
	for _, s := range search {
		seen[s] = true
	}
	for _, s := range hostSearch {
		s = strings.TrimSuffix(s, ".")
		if s == "" || seen[s] || len(search) == maxSearchPaths || chars+1+len(s) > maxSearchChars {
			continue
		}
		seen[s] = true
		search = append(search, s)
		chars += 1 + len(s)
	}
	return fmt.Appendf(nil, "# Written by kelpie: the cluster DNS server of this host.\nnameserver %s\nsearch %s\noptions ndots:5\n",
		nameserver, strings.Join(search, " "))
}
