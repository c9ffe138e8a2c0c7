package gossip

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/hashicorp/memberlist"
)

// metaFormat is the first byte of encoded metadata; a node that reads a
// format it does not know treats the member as not eligible.
const metaFormat = 1

// ErrMetaTooLarge is returned when a node's metadata would not fit
// memberlist's 512-byte limit: too many or too long labels.
var ErrMetaTooLarge = errors.New("node metadata too large")

// Meta is what a node tells every other node about itself, in memberlist's
// node metadata (at most 512 bytes, spread with every alive message). The
// node's name and address are memberlist's own.
type Meta struct {
	// Labels are the node's labels.
	Labels map[string]string
	// Capacity is what the node offers to the scheduler.
	Capacity Capacity
	// Version is the agent's version.
	Version string
	// Eligible says whether the node may be elected scheduler.
	Eligible bool
	// Term is the leader term the node claims; 0 when it does not lead.
	Term uint64
	// Seen is the highest term the node has seen, so that a node that
	// joins learns it and claims above it.
	Seen uint64
	// SteppedDownFor is the term the node stepped down for (stickiness:
	// it does not claim while a holder of that term is alive); 0 for none.
	SteppedDownFor uint64
	// APIAddr is where the node's HTTP API answers peers (see
	// Config.APIAddr); "" from agents that predate it.
	APIAddr string
}

// encodeMeta encodes m; it fails with ErrMetaTooLarge past 512 bytes.
func encodeMeta(m Meta) ([]byte, error) {
	e := encoder{b: make([]byte, 0, 64)}
	e.byte(metaFormat)
	e.bool(m.Eligible)
	e.uvarint(m.Term)
	e.uvarint(m.Seen)
	e.uvarint(m.SteppedDownFor)
	e.uvarint(m.Capacity.CPU)
	e.uvarint(m.Capacity.Memory)
	e.string(m.Version)
	keys := slices.Sorted(maps.Keys(m.Labels))
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.string(k)
		e.string(m.Labels[k])
	}
	// Fields added after the labels are optional trailers: older agents
	// stop reading before them, and a missing one decodes as zero.
	e.string(m.APIAddr)
	if len(e.b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes with %d labels, memberlist allows %d: use fewer or shorter --labels",
			ErrMetaTooLarge, len(e.b), len(keys), memberlist.MetaMaxSize)
	}
	return e.b, nil
}

// decodeMeta decodes what encodeMeta wrote.
func decodeMeta(b []byte) (Meta, error) {
	d := decoder{b: b}
	if f := d.byte(); d.err == nil && f != metaFormat {
		return Meta{}, fmt.Errorf("node metadata format %d: unknown", f)
	}
	var m Meta
	m.Eligible = d.bool()
	m.Term = d.uvarint()
	m.Seen = d.uvarint()
	m.SteppedDownFor = d.uvarint()
	m.Capacity.CPU = d.uvarint()
	m.Capacity.Memory = d.uvarint()
	m.Version = d.string()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("labels")
	}
	if d.err == nil && n > 0 {
		m.Labels = make(map[string]string, n)
		for range n {
			k := d.string()
			m.Labels[k] = d.string()
		}
	}
	if d.err == nil && len(d.b) > 0 {
		m.APIAddr = d.string()
	}
	if d.err != nil {
		return Meta{}, fmt.Errorf("decode node metadata: %w", d.err)
	}
	return m, nil
}

// worstMeta is c's metadata with every counter at its largest, so that a
// Config whose labels fit now still fits after any number of terms.
func worstMeta(c *Config) Meta {
	return Meta{
		Labels: c.Labels, Capacity: c.Capacity, Version: c.Version, Eligible: c.Eligible, APIAddr: c.APIAddr,
		Term: math.MaxUint64, Seen: math.MaxUint64, SteppedDownFor: math.MaxUint64,
	}
}
