package scheduler

import (
	"fmt"
	"sort"
	"time"
)

// A rollout that makes no progress for its progressDeadlineSeconds is
// stalled, as Kubernetes marks a Deployment's Progressing condition false
// with ProgressDeadlineExceeded. Its old pods keep serving (a rolling
// update never replaces more than its budget), the rollout just stops;
// StallTracker tells which rollouts are stalled so that status, metrics
// and alerts can say so.

// RolloutProgress is one workload's rollout as observed at one time.
type RolloutProgress struct {
	// Key names the workload ("NAMESPACE/NAME").
	Key string
	// Hash is the spec hash its pods roll out to: a new one starts a new
	// rollout.
	Hash string
	// Total is how many pods it should run; Updated how many run Hash;
	// Ready how many of those are available (Ready for minReadySeconds).
	Total, Updated, Ready int
	// Deadline is its progressDeadlineSeconds; 0 never stalls.
	Deadline time.Duration
}

// Stall is a rollout that made no progress for its deadline.
type Stall struct {
	Key string
	// NotReady of Total pods do not run the new template and are not
	// available.
	NotReady, Total int
	Deadline        time.Duration
	// Since is when the rollout last made progress.
	Since time.Time
}

// String says what status shows: "rollout stalled: 2 of 3 new pods not
// ready after 600s".
func (s Stall) String() string {
	return fmt.Sprintf("rollout stalled: %d of %d new pods not ready after %ds", s.NotReady, s.Total, int(s.Deadline/time.Second))
}

// StallTracker remembers when each rollout last made progress. The zero
// value is ready to use; it is not safe for concurrent use. It reads no
// clock: Observe is given the time.
type StallTracker struct {
	marks map[string]progressMark
	done  map[string]string // key → the hash whose rollout completed
}

// progressMark is a rollout's last observed counts and when it last made
// progress.
type progressMark struct {
	hash           string
	updated, ready int
	since          time.Time
}

// Observe records the rollouts as observed at now and returns those that
// are stalled, by key. A rollout makes progress when it starts (a new
// Hash), or when more of its pods run the new template or are available
// than at the previous observation; one whose pods all run the new
// template and are available is complete. One that made no progress for
// its Deadline is stalled, until it makes progress again. As in
// Kubernetes, a rollout that completed never stalls afterwards: a pod of
// it that fails later is not a rollout's business (restarts, probes and
// alerts of their own say so). Rollouts not observed are forgotten.
func (t *StallTracker) Observe(now time.Time, obs []RolloutProgress) []Stall {
	next := make(map[string]progressMark, len(obs))
	done := make(map[string]string, len(obs))
	var out []Stall
	for _, o := range obs {
		if o.Ready >= o.Total || t.done[o.Key] == o.Hash {
			done[o.Key] = o.Hash // complete, now or before
			continue
		}
		m, ok := t.marks[o.Key]
		if !ok || m.hash != o.Hash || o.Updated > m.updated || o.Ready > m.ready {
			m.since = now
		}
		m.hash, m.updated, m.ready = o.Hash, o.Updated, o.Ready
		next[o.Key] = m
		if o.Deadline > 0 && now.Sub(m.since) >= o.Deadline {
			out = append(out, Stall{Key: o.Key, NotReady: o.Total - o.Ready, Total: o.Total, Deadline: o.Deadline, Since: m.since})
		}
	}
	t.marks, t.done = next, done
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
