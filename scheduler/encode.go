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
	// Network is the cluster's networking allocation (netplan.Encode of a
	// netplan.State) the leader publishes with the placement, under the
	// same term and quorum rule; opaque to the scheduler. Empty from a
	// leader that allocates none.
	Network json.RawMessage `json:"network,omitempty"`
	// Jobs are the Job controller's records (reconciler.JobRecords as
	// JSON): what each Job and CronJob ran and how it ended, published
	// with the placement of their pods so that a Job that finished never
	// runs again, whoever leads next. Opaque to the scheduler.
	Jobs json.RawMessage `json:"jobs,omitempty"`
	// Rollouts maps each rolling Deployment ("NAMESPACE/NAME") that has
	// replicas to replace to those whose hosts may replace them now
	// (PaceRollouts): the cluster-wide rolling update budget.
	Rollouts map[string][]string `json:"rollouts,omitempty"`
	// Surges maps each rolling Deployment that may surge to the replicas
	// whose hosts may start their new pod beside the old one now
	// (PaceSurges); its replicas in Rollouts are replaced in place.
	Surges map[string][]string `json:"surges,omitempty"`
}

// Encode returns the gzip-compressed JSON of p and the report r: node
// names repeat, so 10,000 replicas compress to tens of kilobytes.
func Encode(p Placement, r Report) ([]byte, error) { return NewPublished(p, r).Encode() }

// NewPublished is what a leader publishes for placement p and its report r.
func NewPublished(p Placement, r Report) Published {
	pub := Published{Placement: p}
	for _, u := range r.Unplaceable {
		pub.Unplaceable = append(pub.Unplaceable, u.String())
	}
	for _, w := range r.Waiting {
		pub.Waiting = append(pub.Waiting, w.Replica+" on "+w.Node)
	}
	return pub
}

// Encode returns the gzip-compressed JSON of pub, which Decode reads.
func (pub Published) Encode() ([]byte, error) {
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
