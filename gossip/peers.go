package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
)

// peerTTL is how long a peer not seen alive stays in peers.json: a host
// down for a long weekend still comes back by itself.
const peerTTL = 7 * 24 * time.Hour

// peer is one node this node has seen, kept across restarts.
type peer struct {
	Name     string    `json:"name"`
	Addr     string    `json:"addr"`
	LastSeen time.Time `json:"last_seen"`
}

// peersFile is StateDir/gossip/peers.json.
type peersFile struct {
	// Peers are the nodes seen alive within peerTTL, self excluded.
	Peers []peer `json:"peers"`
	// HighestTerm is the highest leader term seen, so that a cluster
	// restarted as a whole claims above the placements its agents keep.
	HighestTerm uint64 `json:"highest_term"`
}

// errCorruptPeers marks a peers file that does not parse.
var errCorruptPeers = errors.New("corrupt peers file")

// readPeers reads the peers file; a missing file is an empty one.
func readPeers(path string) (peersFile, error) {
	var pf peersFile
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return pf, nil
	}
	if err != nil {
		return pf, fmt.Errorf("read peers: %w", err)
	}
	if err := json.Unmarshal(b, &pf); err != nil {
		return pf, fmt.Errorf("parse peers %s: %w: %w", path, errCorruptPeers, err)
	}
	return pf, nil
}

// writePeers writes the peers file atomically, peers sorted by name.
func writePeers(path string, pf peersFile) error {
	pf.Peers = slices.Clone(pf.Peers)
	slices.SortFunc(pf.Peers, func(a, b peer) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode peers: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic creates path's directory when missing and replaces path
// with b (atomicfile.WriteFile), so a crash leaves the old content or the
// new, never a torn file.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return atomicfile.WriteFile(path, b, 0o600)
}

// readPlacementFile reads the placement kept in the state dir.
func readPlacementFile(path string) (Placement, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Placement{}, nil
	}
	if err != nil {
		return Placement{}, fmt.Errorf("read placement: %w", err)
	}
	d := decoder{b: b}
	p := decodePlacement(&d)
	if d.err != nil {
		return Placement{}, fmt.Errorf("decode placement %s: %w", path, d.err)
	}
	return p, nil
}
