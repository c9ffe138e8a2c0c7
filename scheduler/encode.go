package scheduler

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
)

// maxDecoded bounds a decoded placement: 10,000 replicas take well under
// a megabyte of JSON; a blob inflating past this is refused, not read.
const maxDecoded = 64 << 20

// Published is what a leader publishes to the cluster: the placement, and
// what every host's status shows about what it could not place.
type Published struct {
	Placement
	// Unplaceable lists "REPLICA: REASON" for the replicas no node took.
	Unplaceable []string `json:"unplaceable,omitempty"`
	// Waiting lists "REPLICA on NODE" for replicas kept on a dead node
	// until its grace period ends.
	Waiting []string `json:"waiting,omitempty"`
}

// Encode returns the gzip-compressed JSON of p and the report r: node
// names repeat, so 10,000 replicas compress to tens of kilobytes.
func Encode(p Placement, r Report) ([]byte, error) {
	pub := Published{Placement: p}
	for _, u := range r.Unplaceable {
		pub.Unplaceable = append(pub.Unplaceable, u.String())
	}
	for _, w := range r.Waiting {
		pub.Waiting = append(pub.Waiting, w.Replica+" on "+w.Node)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(pub); err != nil {
		return nil, fmt.Errorf("encode placement: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("encode placement: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode reads what Encode wrote.
func Decode(b []byte) (Published, error) {
	var pub Published
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return pub, fmt.Errorf("decode placement: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxDecoded+1))
	if err != nil {
		return pub, fmt.Errorf("decode placement: %w", err)
	}
	if len(data) > maxDecoded {
		return pub, fmt.Errorf("decode placement: more than %d bytes", maxDecoded)
	}
	if err := json.Unmarshal(data, &pub); err != nil {
		return pub, fmt.Errorf("decode placement: %w", err)
	}
	return pub, nil
}
