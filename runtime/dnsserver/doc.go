// Package dnsserver is the agent's embedded DNS server: it listens on one
// address (the pod bridge's gateway, port 53), UDP and TCP, answers the
// cluster's names from the current netplan.Names, and forwards every other
// name to the host's own resolvers (the nameservers of the host's
// resolv.conf), as a stub forwarder does.
//
// It never decides what the names are (netplan does) and never answers for
// anyone outside the client ranges it is given (the cluster pod range):
// it is not an open resolver. What it costs is bounded: forwards in flight
// (MaxForwards; more are REFUSED at once), TCP connections (MaxTCPConns),
// one timeout per upstream exchange, and at most three upstreams.
//
// A Server counts queries by result (Result) and is a
// prometheus.Collector, for the agent's /metrics.
package dnsserver
