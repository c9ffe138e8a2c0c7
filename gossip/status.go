package gossip

import "time"

// NodeStatus is what one node reports about its workloads. Each node sets
// its own (Node.SetStatus); the others receive it by broadcast when it is
// small and by push-pull always.
type NodeStatus struct {
	// Node is the reporting node's name (filled by SetStatus).
	Node string
	// Version orders a node's statuses (filled by SetStatus from its
	// clock, strictly increasing).
	Version uint64
	// Commit is the commit the node has applied.
	Commit string
	// PodsRunning and PodsReady count the node's pods.
	PodsRunning, PodsReady int
	// Ready says the node's runtime is healthy and reconciling.
	Ready bool
	// Updated is when the node set this status (its clock).
	Updated time.Time
	// Data is optional detail for the scheduler or status (per-pod
	// state), opaque to gossip. Keep it small: a status above
	// maxBroadcastStatus bytes spreads by push-pull only.
	Data []byte
}

// maxBroadcastStatus is the largest encoded status sent by broadcast; a
// larger one would never fit a UDP packet with memberlist's overhead.
const maxBroadcastStatus = 1000

func (s NodeStatus) encode(e *encoder) {
	e.string(s.Node)
	e.uvarint(s.Version)
	e.string(s.Commit)
	e.uvarint(uint64(s.PodsRunning))
	e.uvarint(uint64(s.PodsReady))
	e.bool(s.Ready)
	e.uvarint(uint64(s.Updated.UnixNano()))
	e.bytes(s.Data)
}

func decodeStatus(d *decoder) NodeStatus {
	var s NodeStatus
	s.Node = d.string()
	s.Version = d.uvarint()
	s.Commit = d.string()
	s.PodsRunning = int(d.uvarint())
	s.PodsReady = int(d.uvarint())
	s.Ready = d.bool()
	s.Updated = time.Unix(0, int64(d.uvarint()))
	s.Data = d.bytes()
	return s
}
