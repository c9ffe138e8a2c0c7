package workload

import (
	"fmt"
	"time"
)

// Tracker follows the probes of one run of one container, as the kubelet's
// probe workers do:
//
//   - each probe is first due InitialDelay after the container started,
//     then Period after the start of the previous one;
//   - a probe's result changes only after SuccessThreshold consecutive
//     successes or FailureThreshold consecutive failures;
//   - until the startup probe has passed, liveness and readiness are not
//     run; a container without a startup probe has started at once;
//   - readiness starts failing (not Ready) and liveness passing; a
//     container without a readiness probe is Ready once started;
//   - a failed liveness or startup probe asks for the container to be
//     killed (Kill), after which no probe is due and the container is not
//     Ready. What follows the kill is the restart policy's (DecideRestart).
//
// A Tracker covers one run: when the container is started again, make a
// new one. It is not safe for concurrent use; the caller owns the clock.
type Tracker struct {
	container string
	probes    ContainerProbes
	startedAt time.Time
	// started is set once the startup probe passed (at once without one);
	// startedSince is when.
	started      bool
	startedSince time.Time
	ready        bool
	readySince   time.Time
	kill         *Kill
	workers      map[ProbeKind]*worker
}

// worker is the state of one probe of a Tracker.
type worker struct {
	spec *ProbeSpec
	// result is the probe's thresholded result: passing, failing, or
	// unknown (neither yet).
	result probeResult
	// last and run are the last raw result and how many in a row.
	last bool
	run  int
	// probed is set once a result arrived; lastAt is the latest one's start.
	probed bool
	lastAt time.Time
}

// probeResult is a probe's thresholded result.
type probeResult int

// Probe results; the zero value is unknown.
const (
	unknown probeResult = iota
	passing
	failing
)

// resultOf returns the result of one raw outcome.
func resultOf(ok bool) probeResult {
	if ok {
		return passing
	}
	return failing
}

// Kill is a request from a failed liveness or startup probe to kill the
// container (and let its restart policy decide what follows).
type Kill struct {
	Kind ProbeKind
	At   time.Time
	// Grace is the probe's terminationGracePeriodSeconds; nil means the
	// pod's (GraceOr).
	Grace *time.Duration
	// Reason is a sentence for logs, e.g. "liveness probe failed 3 times: HTTP 503".
	Reason string
}

// GraceOr returns the grace period of the kill: the probe's, or pod when
// the probe has none.
func (k Kill) GraceOr(pod time.Duration) time.Duration {
	if k.Grace != nil {
		return *k.Grace
	}
	return pod
}

// Event is what changed in a Transition.
type Event string

// Transition events.
const (
	// EventStarted: the startup probe passed.
	EventStarted Event = "Started"
	// EventReady and EventNotReady: the container's Ready condition changed.
	EventReady    Event = "Ready"
	EventNotReady Event = "NotReady"
	// EventKill: a liveness or startup probe failed; the container is to be
	// killed (Tracker.Kill).
	EventKill Event = "Kill"
)

// Transition is one change of a container's probe state: one log line.
type Transition struct {
	Container string
	// Kind is the probe whose result caused the change.
	Kind  ProbeKind
	Event Event
	At    time.Time
	// Run is how many results in a row crossed the threshold.
	Run int
	// Output is the output of the last probe.
	Output string
}

// String formats the transition for the log, e.g.
// "container web: NotReady (readiness probe failed 3 times: HTTP 503)".
func (t Transition) String() string {
	verdict := "passed"
	if t.Event == EventNotReady || t.Event == EventKill {
		verdict = "failed"
	}
	s := fmt.Sprintf("container %s: %s (%s probe %s", t.Container, t.Event, t.Kind, verdict)
	if t.Run > 1 {
		s += fmt.Sprintf(" %d times", t.Run)
	}
	if t.Output != "" {
		s += ": " + t.Output
	}
	return s + ")"
}

// NewTracker starts tracking the probes of container, whose run started at
// startedAt.
func NewTracker(container string, probes ContainerProbes, startedAt time.Time) *Tracker {
	t := &Tracker{container: container, probes: probes, startedAt: startedAt, workers: map[ProbeKind]*worker{}}
	for _, k := range probeKinds {
		if s := probes.spec(k); s != nil {
			// As the kubelet's: liveness starts passing, readiness
			// failing, startup unknown.
			w := &worker{spec: s}
			switch k {
			case Liveness:
				w.result = passing
			case Readiness:
				w.result = failing
			}
			t.workers[k] = w
		}
	}
	if probes.Startup == nil {
		t.start(startedAt)
	}
	return t
}

// start marks the container started at; without a readiness probe it is
// Ready from then on.
func (t *Tracker) start(at time.Time) {
	t.started, t.startedSince = true, at
	if t.probes.Readiness == nil {
		t.ready, t.readySince = true, at
	}
}

// Started reports whether the startup probe passed (or there is none).
func (t *Tracker) Started() bool { return t.started }

// Ready reports the container's Ready condition.
func (t *Tracker) Ready() bool { return t.ready }

// ReadySince returns when the container last became Ready; zero when it is
// not Ready.
func (t *Tracker) ReadySince() time.Time {
	if !t.ready {
		return time.Time{}
	}
	return t.readySince
}

// Kill returns the kill a failed probe asked for, if any.
func (t *Tracker) Kill() (Kill, bool) {
	if t.kill == nil {
		return Kill{}, false
	}
	return *t.kill, true
}

// Due returns when the next probe of kind is due, and false when none is:
// the container has no such probe, it is gated by the startup probe, the
// startup probe passed already, or a kill was asked for. A due time in the
// past means now.
func (t *Tracker) Due(kind ProbeKind) (time.Time, bool) {
	w := t.workers[kind]
	if w == nil || t.kill != nil {
		return time.Time{}, false
	}
	if kind == Startup && t.started {
		return time.Time{}, false
	}
	if kind != Startup && !t.started {
		return time.Time{}, false
	}
	if w.probed {
		return w.lastAt.Add(w.spec.Period), true
	}
	first := t.startedAt.Add(w.spec.InitialDelay)
	if kind != Startup && t.startedSince.After(first) {
		// Gated by the startup probe until then: probe at once.
		first = t.startedSince
	}
	return first, true
}

// Next returns the probe due first and when; false when none is due.
func (t *Tracker) Next() (ProbeKind, time.Time, bool) {
	var (
		kind ProbeKind
		at   time.Time
		ok   bool
	)
	for _, k := range probeKinds {
		if d, due := t.Due(k); due && (!ok || d.Before(at)) {
			kind, at, ok = k, d, true
		}
	}
	return kind, at, ok
}

// Observe feeds one probe result and returns the transitions it caused, in
// order (none for most results). A result for a probe that is not due
// (gated, finished, after a kill) or older than the run is ignored.
func (t *Tracker) Observe(r Result) []Transition {
	if _, due := t.Due(r.Kind); !due || r.At.Before(t.startedAt) {
		return nil
	}
	w := t.workers[r.Kind]
	w.probed, w.lastAt = true, r.At
	if w.run > 0 && w.last == r.OK {
		w.run++
	} else {
		w.last, w.run = r.OK, 1
	}
	if r.OK && w.run < w.spec.SuccessThreshold || !r.OK && w.run < w.spec.FailureThreshold || w.result == resultOf(r.OK) {
		return nil
	}
	w.result = resultOf(r.OK)
	tr := Transition{Container: t.container, Kind: r.Kind, At: r.At, Run: w.run, Output: r.Output}
	var out []Transition
	emit := func(e Event) {
		tr.Event = e
		out = append(out, tr)
	}
	switch {
	case r.Kind == Readiness:
		t.ready = r.OK
		t.readySince = r.At
		emit(map[bool]Event{true: EventReady, false: EventNotReady}[r.OK])
	case r.OK: // startup passed (liveness starts passing: no change)
		t.start(r.At)
		emit(EventStarted)
		if t.ready {
			emit(EventReady)
		}
	default: // liveness or startup failed
		t.kill = &Kill{Kind: r.Kind, At: r.At, Grace: w.spec.TerminationGrace,
			Reason: fmt.Sprintf("%s probe failed %d %s", r.Kind, w.run, plural(w.run, "time", "times"))}
		if r.Output != "" {
			t.kill.Reason += ": " + r.Output
		}
		emit(EventKill)
		if t.ready {
			// Kubernetes keeps the container Ready until it stops; kelpie
			// takes it out of service at once.
			t.ready = false
			emit(EventNotReady)
		}
	}
	return out
}

// plural returns one or many after n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// PodReady reports a pod's Ready condition from its app containers'
// trackers (a nil tracker is a container that does not run): every
// container Ready, and at least one container.
func PodReady(containers []*Tracker) bool {
	_, ok := PodReadySince(containers)
	return ok
}

// PodReadySince returns since when a pod has been Ready (the latest of its
// containers' ReadySince), and false when it is not Ready.
func PodReadySince(containers []*Tracker) (time.Time, bool) {
	var since time.Time
	for _, c := range containers {
		if c == nil || !c.Ready() {
			return time.Time{}, false
		}
		if c.readySince.After(since) {
			since = c.readySince
		}
	}
	return since, len(containers) > 0
}

// Available reports whether a pod Ready since since counts as available at
// now for a rollout with minReadySeconds minReady.
func Available(since time.Time, ready bool, minReady time.Duration, now time.Time) bool {
	return ready && !now.Before(since.Add(minReady))
}
