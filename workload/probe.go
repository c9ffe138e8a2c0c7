package workload

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ProbeKind names one of a container's three probes.
type ProbeKind string

// Probe kinds.
const (
	Liveness  ProbeKind = "liveness"
	Readiness ProbeKind = "readiness"
	Startup   ProbeKind = "startup"
)

// probeKinds lists the kinds in the order Next breaks ties: startup first,
// as it gates the others.
var probeKinds = [...]ProbeKind{Startup, Liveness, Readiness}

// ProbeSpec is the timing of one probe, as the manifest gives it (how a
// probe is made, exec, httpGet, tcpSocket or grpc, is the caller's
// business).
type ProbeSpec struct {
	// InitialDelay is how long after the container started the first
	// probe is due.
	InitialDelay time.Duration
	// Period is the time between the starts of two probes.
	Period time.Duration
	// Timeout is how long one probe may take; the caller reports a probe
	// that takes longer as a failure.
	Timeout time.Duration
	// SuccessThreshold is the number of consecutive successes that make
	// a failing probe pass (always 1 for liveness and startup).
	SuccessThreshold int
	// FailureThreshold is the number of consecutive failures that make a
	// passing probe fail.
	FailureThreshold int
	// TerminationGrace, when set, replaces the pod's termination grace
	// period for a kill this probe asks for (liveness and startup).
	TerminationGrace *time.Duration
}

// ProbeSpecOf resolves a manifest probe; nil for nil. Fields left zero get
// the Kubernetes defaults (period 10 s, timeout 1 s, thresholds 1 and 3),
// as specs defaults them already.
func ProbeSpecOf(p *corev1.Probe) *ProbeSpec {
	if p == nil {
		return nil
	}
	s := &ProbeSpec{
		InitialDelay:     seconds(p.InitialDelaySeconds),
		Period:           seconds(p.PeriodSeconds),
		Timeout:          seconds(p.TimeoutSeconds),
		SuccessThreshold: int(p.SuccessThreshold),
		FailureThreshold: int(p.FailureThreshold),
	}
	if s.Period <= 0 {
		s.Period = 10 * time.Second
	}
	if s.Timeout <= 0 {
		s.Timeout = time.Second
	}
	s.SuccessThreshold = max(s.SuccessThreshold, 1)
	if s.FailureThreshold <= 0 {
		s.FailureThreshold = 3
	}
	if g := p.TerminationGracePeriodSeconds; g != nil {
		d := time.Duration(*g) * time.Second
		s.TerminationGrace = &d
	}
	return s
}

// seconds converts a manifest's seconds to a duration.
func seconds(n int32) time.Duration { return time.Duration(n) * time.Second }

// ContainerProbes are a container's probes; a nil probe is not run.
type ContainerProbes struct {
	Liveness  *ProbeSpec
	Readiness *ProbeSpec
	Startup   *ProbeSpec
}

// ContainerProbesOf resolves the probes of a manifest container.
func ContainerProbesOf(c *corev1.Container) ContainerProbes {
	return ContainerProbes{
		Liveness:  ProbeSpecOf(c.LivenessProbe),
		Readiness: ProbeSpecOf(c.ReadinessProbe),
		Startup:   ProbeSpecOf(c.StartupProbe),
	}
}

// spec returns the probe of kind.
func (p ContainerProbes) spec(k ProbeKind) *ProbeSpec {
	switch k {
	case Liveness:
		return p.Liveness
	case Readiness:
		return p.Readiness
	case Startup:
		return p.Startup
	}
	return nil
}

// Result is the outcome of one probe.
type Result struct {
	Kind ProbeKind
	// OK is success: exec exit 0, HTTP 200–399, a TCP connection, gRPC
	// SERVING. A probe that timed out is a failure.
	OK bool
	// At is when the probe started.
	At time.Time
	// Output says what happened, e.g. "HTTP 503" or "timeout after 1s";
	// transitions carry it to the log.
	Output string
}
