package gossip

import (
	"fmt"
	"net"
	"net/netip"
)

// APIAddrFor is the API address a node advertises for an HTTP API that
// listens on listen (host:port): the address itself when it names one
// peers can dial, else ":port", which peers read as the node's gossip
// address on that port (see Member.APIAddr). A wildcard (0.0.0.0, ::, "")
// and a loopback address are not dialable from another host: a node on
// loopback is reached by its peers there only when its gossip address is
// loopback too, which ":port" gives. Port 0 (picked when listening, in
// tests) advertises nothing: "".
func APIAddrFor(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	if port == "" {
		return "", fmt.Errorf("listen address %q: no port", listen)
	}
	if port == "0" {
		return "", nil
	}
	if host == "" {
		return ":" + port, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && (ip.IsUnspecified() || ip.IsLoopback()) {
		return ":" + port, nil
	}
	return net.JoinHostPort(host, port), nil
}

// APIAddr is where the member's HTTP API answers: the address in its
// metadata, with its gossip address's host when that names only a port;
// for a member that advertises none (an older agent), its gossip
// address's host on fallbackPort (the asking node's own API port: the
// members of a cluster are started alike).
func (m Member) APIAddr(fallbackPort string) (string, error) {
	gossipHost, _, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return "", fmt.Errorf("gossip address %q of %s: %w", m.Addr, m.Name, err)
	}
	if m.Meta.APIAddr == "" {
		return net.JoinHostPort(gossipHost, fallbackPort), nil
	}
	host, port, err := net.SplitHostPort(m.Meta.APIAddr)
	if err != nil {
		return "", fmt.Errorf("API address %q advertised by %s: %w", m.Meta.APIAddr, m.Name, err)
	}
	if host == "" {
		host = gossipHost
	}
	return net.JoinHostPort(host, port), nil
}
