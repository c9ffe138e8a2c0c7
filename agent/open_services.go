package agent

import (
	"log/slog"

	"github.com/kelpie-dev/kelpie/runtime/dnsserver"
	"github.com/kelpie-dev/kelpie/runtime/nft"
)

// nftDataPath is the real DataPath: kelpie's nftables table through an
// nft.Loader, stale UDP flows through conntrack netlink.
type nftDataPath struct {
	*nft.Loader
	nft.Conntrack
}

var _ DataPath = nftDataPath{}

// openDataPath makes the data path of Open; it fails when nft is missing
// (the agent then runs without one, and pods keep the bridge's masquerade).
func openDataPath(log *slog.Logger) (nftDataPath, error) {
	l, err := nft.New(nft.Config{Log: log})
	if err != nil {
		return nftDataPath{}, err
	}
	return nftDataPath{Loader: l}, nil
}

// startDNSServer is Open's StartDNS: a dnsserver.Server with FreeBind (the
// bridge takes its gateway address only when the first pod joins).
func startDNSServer(log *slog.Logger) StartDNS {
	return func(c DNSConfig) (NameServer, error) {
		s, err := dnsserver.New(dnsserver.Config{Addr: c.Addr.String(), FreeBind: true, Clients: c.Clients, Namespace: c.Namespace, Log: log})
		if err != nil {
			return nil, err
		}
		s.SetNames(c.Names)
		if err := s.Start(); err != nil {
			return nil, err
		}
		return s, nil
	}
}
