// Package gossip owns cluster membership for kelpie agents: a memberlist
// (hashicorp/memberlist) cluster whose gossip is encrypted with a shared
// keyring, each node's metadata (labels, capacity, agent version,
// scheduler eligibility, the leader term it claims), the election of one
// scheduler, and the spreading of two kinds of state: every node's status
// (pods running and ready, applied commit) and the cluster's current
// placement.
//
// It never decides placement: a [Placement] is an opaque versioned blob
// (term, seq, commit, data) that the leader publishes and that every node
// adopts when its (term, seq) is the highest seen (fencing). Large state
// travels over TCP (push-pull anti-entropy and direct pulls), never in one
// UDP packet; small notices ride memberlist's broadcast queue and are
// relayed by their receivers.
//
// The election itself is a pure function of a node's view ([Decide]); the
// [Node] runs it on a timer from an injected [Clock] and applies the
// decision to its metadata. Gossip cannot make leadership safe, so the
// protocol makes a second leader rare (stickiness, a settle period) and
// harmless (placements are fenced by term).
//
// memberlist never rejoins after a partition by itself: a Node keeps its
// last known peers in StateDir/gossip/peers.json and keeps joining those
// it does not see alive, so a healed partition or a rebooted host comes
// back without an operator.
package gossip
