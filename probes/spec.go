package probes

import (
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/workload"
)

// specOf is the timing of a resolved probe, with the Kubernetes defaults
// for fields left zero (as workload.ProbeSpecOf gives them); nil for nil.
func specOf(p *reconciler.Probe) *workload.ProbeSpec {
	if p == nil {
		return nil
	}
	s := &workload.ProbeSpec{
		InitialDelay:     p.InitialDelay,
		Period:           p.Period,
		Timeout:          p.Timeout,
		SuccessThreshold: max(p.SuccessThreshold, 1),
		FailureThreshold: p.FailureThreshold,
		TerminationGrace: p.TerminationGrace,
	}
	if s.Period <= 0 {
		s.Period = defaultPeriod
	}
	if s.Timeout <= 0 {
		s.Timeout = defaultTimeout
	}
	if s.FailureThreshold <= 0 {
		s.FailureThreshold = defaultFailureThreshold
	}
	return s
}

// Kubernetes' probe defaults.
const (
	defaultPeriod           = 10 * time.Second
	defaultTimeout          = time.Second
	defaultFailureThreshold = 3
)

// containerProbes resolves the probes of a container for a Tracker.
func containerProbes(p reconciler.Probes) workload.ContainerProbes {
	return workload.ContainerProbes{Liveness: specOf(p.Liveness), Readiness: specOf(p.Readiness), Startup: specOf(p.Startup)}
}

// hasProbes reports whether a container has any probe.
func hasProbes(p reconciler.Probes) bool {
	return p.Liveness != nil || p.Readiness != nil || p.Startup != nil
}

// probeOf returns the probe of kind.
func probeOf(p reconciler.Probes, kind workload.ProbeKind) *reconciler.Probe {
	switch kind {
	case workload.Liveness:
		return p.Liveness
	case workload.Readiness:
		return p.Readiness
	case workload.Startup:
		return p.Startup
	}
	return nil
}
