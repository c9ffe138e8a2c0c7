package netplan

import (
	"maps"
	"net/netip"
	"slices"
	"time"
)

// State is the cluster's networking allocations as the leader publishes
// them and every agent adopts them: each host's slice of the pod range, each
// Service's virtual IP and node ports, and what is quarantined. Agents adopt
// the newest State they have seen (Newer), as they adopt placements.
type State struct {
	// Version is the encoding's format version (StateVersion when encoded).
	Version int `json:"version"`
	// Term is the term of the leader that allocated; Seq numbers the
	// states of that term from 1. A state from a superseded leader is never
	// adopted.
	Term uint64 `json:"term"`
	Seq  uint64 `json:"seq"`
	// ClusterCIDR and ServiceCIDR are the ranges the leader allocated from,
	// so a host started with other flags can tell.
	ClusterCIDR netip.Prefix `json:"clusterCIDR"`
	ServiceCIDR netip.Prefix `json:"serviceCIDR"`
	// Slices maps node names to their slice of the pod range.
	Slices map[string]Slice `json:"slices,omitempty"`
	// Services maps "NAMESPACE/NAME" to the Service's allocations.
	Services map[string]ServiceAlloc `json:"services,omitempty"`
	// Released lists IPs and node ports freed less than a quarantine ago.
	Released []Released `json:"released,omitempty"`
}

// Slice is a host's slice of the cluster pod range.
type Slice struct {
	// Prefix is the slice: the subnet of the host's pod bridge.
	Prefix netip.Prefix `json:"prefix"`
	// Pinned slices were chosen by the host (--pod-subnet), not the leader.
	Pinned bool `json:"pinned,omitempty"`
	// IdleSince is when the host was first seen down (dead, left or gone);
	// zero while it is alive or suspect.
	IdleSince time.Time `json:"idleSince,omitzero"`
}

// ServiceAlloc is what a Service holds.
type ServiceAlloc struct {
	// ClusterIP is the Service's virtual IP; invalid when it is headless or
	// none could be given (the Report says why).
	ClusterIP netip.Addr `json:"clusterIP,omitzero"`
	// Headless Services (clusterIP: None) have no virtual IP: their name
	// resolves to their pods.
	Headless bool `json:"headless,omitempty"`
	// NodePorts maps a port of the Service ("PORT/PROTOCOL", as "80/TCP")
	// to its node port.
	NodePorts map[string]int32 `json:"nodePorts,omitempty"`
}

// Released is an IP or a node port a Service gave up (deleted, changed), in
// quarantine until Since plus the configured quarantine.
type Released struct {
	// Service is the "NAMESPACE/NAME" that held it: it may take it back.
	Service string `json:"service"`
	// IP or NodePort is what was released (one of them).
	IP netip.Addr `json:"ip,omitzero"`
	// Port is the Service's port ("80/TCP") the NodePort was for.
	Port     string `json:"port,omitempty"`
	NodePort int32  `json:"nodePort,omitempty"`
	// Since is when it was released.
	Since time.Time `json:"since"`
}

// Newer reports whether s supersedes t: a higher term, or the same term and
// a higher sequence number. Any state is newer than nil.
func (s *State) Newer(t *State) bool {
	if t == nil {
		return s != nil
	}
	if s == nil {
		return false
	}
	if s.Term != t.Term {
		return s.Term > t.Term
	}
	return s.Seq > t.Seq
}

// Equal reports whether s and t hold the same allocations (Version, Term
// and Seq are not compared).
func (s *State) Equal(t *State) bool {
	if s == nil || t == nil {
		return s == t
	}
	return s.ClusterCIDR == t.ClusterCIDR && s.ServiceCIDR == t.ServiceCIDR &&
		maps.EqualFunc(s.Slices, t.Slices, Slice.equal) &&
		maps.EqualFunc(s.Services, t.Services, ServiceAlloc.equal) &&
		slices.EqualFunc(s.Released, t.Released, func(a, b Released) bool {
			return a.Service == b.Service && a.IP == b.IP && a.Port == b.Port && a.NodePort == b.NodePort && a.Since.Equal(b.Since)
		})
}

// SliceOf returns the slice of node, if it has one.
func (s *State) SliceOf(node string) (netip.Prefix, bool) {
	if s == nil {
		return netip.Prefix{}, false
	}
	sl, ok := s.Slices[node]
	return sl.Prefix, ok
}

// equal compares two slices (times by instant, as after a JSON round trip).
func (a Slice) equal(b Slice) bool {
	return a.Prefix == b.Prefix && a.Pinned == b.Pinned && a.IdleSince.Equal(b.IdleSince)
}

// equal compares two allocations.
func (a ServiceAlloc) equal(b ServiceAlloc) bool {
	return a.ClusterIP == b.ClusterIP && a.Headless == b.Headless && maps.Equal(a.NodePorts, b.NodePorts)
}
