// Package netplan is the pure planning of cluster networking: the slice of
// the cluster pod range each host gets, the Service virtual IPs and node
// ports the leader allocates, the endpoints of every Service, the nftables
// ruleset that realises them on a host, and the answers of the cluster DNS.
//
// Everything here takes values and returns values: no I/O, no clock (the
// caller passes Now), no goroutines. The agent gossips the State that
// Allocate returns (fenced by term and sequence number as placements are),
// feeds Resolve with the pods every host reports, loads the text of
// BuildRuleset or Diff with one `nft -f` transaction, and serves Names through
// its DNS server. See docs/networking.md for the design.
//
// Only IPv4 is supported, as in the rest of kelpie.
package netplan
