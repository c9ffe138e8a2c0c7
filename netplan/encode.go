package netplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// StateVersion is the format version Encode writes and Decode reads.
const StateVersion = 1

// maxEncoded bounds an encoded State: 500 hosts and 10,000 Services take
// about a megabyte.
const maxEncoded = 16 << 20

// ErrVersion is returned by Decode for a state of another format version:
// an agent must not adopt allocations it cannot read whole.
var ErrVersion = errors.New("unsupported state version")

// Encode returns the JSON of s with Version set to StateVersion. Maps are
// written in key order, so equal states encode to the same bytes.
func Encode(s State) ([]byte, error) {
	s.Version = StateVersion
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode network state: %w", err)
	}
	return b, nil
}

// Decode reads what Encode wrote. It refuses other versions (ErrVersion),
// oversized input and allocations that cannot be right: a slice or Service
// IP that is not IPv4, two hosts with overlapping slices.
func Decode(b []byte) (State, error) {
	var s State
	if len(b) > maxEncoded {
		return s, fmt.Errorf("decode network state: more than %d bytes", maxEncoded)
	}
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return s, fmt.Errorf("decode network state: %w", err)
	}
	if head.Version != StateVersion {
		return s, fmt.Errorf("decode network state: version %d (this agent reads %d): %w", head.Version, StateVersion, ErrVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("decode network state: %w", err)
	}
	if err := s.check(); err != nil {
		return State{}, fmt.Errorf("decode network state: %w", err)
	}
	return s, nil
}

// check rejects decoded allocations that cannot be right.
func (s *State) check() error {
	for _, name := range sortedKeys(s.Slices) {
		p := s.Slices[name].Prefix
		if !p.IsValid() || !p.Addr().Is4() || p.Masked() != p {
			return fmt.Errorf("node %s: slice %s is not an IPv4 network", name, p)
		}
	}
	if a, b, ok := overlappingSlices(s.Slices); ok {
		return fmt.Errorf("nodes %s and %s have overlapping slices %s and %s", a, b, s.Slices[a].Prefix, s.Slices[b].Prefix)
	}
	for _, key := range sortedKeys(s.Services) {
		a := s.Services[key]
		if a.ClusterIP.IsValid() && (!a.ClusterIP.Is4() || a.Headless) {
			return fmt.Errorf("service %s: clusterIP %s: want IPv4 and not headless", key, a.ClusterIP)
		}
		for port, np := range a.NodePorts {
			if np < 1 || np > 65535 {
				return fmt.Errorf("service %s: port %s: node port %d out of range", key, port, np)
			}
		}
	}
	return nil
}
