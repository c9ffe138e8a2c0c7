package gossip

import (
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Message types, the first byte of every user message.
const (
	msgPlacementNotice byte = 1 + iota // (term, seq, origin): a newer placement can be pulled from origin
	msgWantPlacement                   // (term, seq, from): send me your placement
	msgPlacement                       // a whole placement, over TCP
	msgStatus                          // one node's status, relayed by receivers
	msgLeaving                         // (name): the node leaves gracefully
	msgStatusNotice                    // (0, version, node): node's status of that version can be pulled from it
	msgWantStatus                      // (0, version, from): send me your status if it is that new
)

// stateFormat is the first byte of push-pull state.
const stateFormat = 1

// notice is a small announcement: a placement version and where to get it.
type notice struct {
	Term, Seq uint64
	Node      string // origin (notice) or requester (want)
}

func encodeNotice(typ byte, n notice) []byte {
	e := encoder{}
	e.byte(typ)
	e.uvarint(n.Term)
	e.uvarint(n.Seq)
	e.string(n.Node)
	return e.b
}

func decodeNotice(d *decoder) notice {
	return notice{Term: d.uvarint(), Seq: d.uvarint(), Node: d.string()}
}

func encodePlacementMsg(p Placement) []byte {
	e := encoder{b: make([]byte, 0, len(p.Data)+64)}
	e.byte(msgPlacement)
	p.encode(&e)
	return e.b
}

func encodeStatusMsg(s NodeStatus) []byte {
	e := encoder{}
	e.byte(msgStatus)
	s.encode(&e)
	return e.b
}

func encodeLeaving(name string) []byte {
	e := encoder{}
	e.byte(msgLeaving)
	e.string(name)
	return e.b
}

// pushState is what push-pull exchanges: who sends it, the version of the
// placement it holds, and every status known. The placement itself is not
// in it: a peer that lacks that version pulls it from the holder over TCP
// (a 1 MB placement in every push-pull and join of 50 nodes starved their
// probes here and made members flap). It travels over TCP, compressed and
// encrypted by memberlist, up to memberlist's 20 MB limit.
type pushState struct {
	Have     notice // the sender's placement version; Node is the sender
	Statuses []NodeStatus
}

func encodeState(have notice, statuses []NodeStatus) []byte {
	e := encoder{b: make([]byte, 0, 64*len(statuses)+64)}
	e.byte(stateFormat)
	e.string(have.Node)
	e.uvarint(have.Term)
	e.uvarint(have.Seq)
	e.uvarint(uint64(len(statuses)))
	for _, s := range statuses {
		s.encode(&e)
	}
	return e.b
}

func decodeState(b []byte) (pushState, error) {
	d := decoder{b: b}
	if f := d.byte(); d.err == nil && f != stateFormat {
		return pushState{}, fmt.Errorf("push-pull state format %d: unknown", f)
	}
	var st pushState
	st.Have.Node = d.string()
	st.Have.Term = d.uvarint()
	st.Have.Seq = d.uvarint()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("statuses")
	}
	for i := uint64(0); d.err == nil && i < n; i++ {
		st.Statuses = append(st.Statuses, decodeStatus(&d))
	}
	if d.err != nil {
		return pushState{}, fmt.Errorf("decode push-pull state: %w", d.err)
	}
	return st, nil
}

// broadcast is a message in memberlist's transmit-limited queue; a newer
// broadcast of the same name replaces an older one still queued.
type broadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

// Invalidates reports whether b replaces o.
func (b *broadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*broadcast)
	return ok && ob.name == b.name
}

// Name is the broadcast's identity for invalidation.
func (b *broadcast) Name() string { return b.name }

// Message is the bytes sent.
func (b *broadcast) Message() []byte { return b.msg }

// Finished is called when the message is no longer sent.
func (b *broadcast) Finished() {}
