package netplan

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// ErrStaleTerm is returned by Allocate when asked to allocate for a term
// lower than the previous state's: a superseded leader must not publish.
var ErrStaleTerm = errors.New("stale term")

// Options configure one Allocate.
type Options struct {
	// Term is the allocating leader's term; 0 keeps the previous state's
	// (for previews such as `kelpie plan --cluster`).
	Term uint64
	// Now is the current time, injected; required.
	Now time.Time
	// Config is the networking configuration; zero fields take defaults.
	Config Config
}

// Allocate decides every host's slice of the pod range and every Service's
// virtual IP and node ports, starting from prev (nil for the first time),
// for the nodes of the leader's view (dead ones included) and the Services
// of the desired state. The rules are those of allocateSlices and
// allocateServices; what could not be given is in the report, never an
// error.
//
// The returned state has opts.Term (or prev's when 0) and the next Seq of
// that term, unless nothing changed: then it equals prev, Seq included, so
// allocating again with the output as prev and the same input is a no-op.
//
// Allocate fails only on invalid input: a missing Now, a bad Config, nodes
// or Services unnamed or listed twice, or a term lower than prev's
// (ErrStaleTerm).
func Allocate(prev *State, nodes []Node, services []*corev1.Service, opts Options) (State, Report, error) {
	var report Report
	if opts.Now.IsZero() {
		return State{}, report, errors.New("allocate: Now is required (inject the clock)")
	}
	cfg := opts.Config
	if err := cfg.validate(); err != nil {
		return State{}, report, fmt.Errorf("allocate: %w", err)
	}
	term := opts.Term
	if prev != nil {
		if term == 0 {
			term = prev.Term
		}
		if term < prev.Term {
			return State{}, report, fmt.Errorf("allocate for term %d: the previous state has term %d: %w", term, prev.Term, ErrStaleTerm)
		}
	}
	idx, err := indexNodes(nodes)
	if err != nil {
		return State{}, report, fmt.Errorf("allocate: %w", err)
	}
	out := State{Version: StateVersion, Term: term, ClusterCIDR: cfg.ClusterCIDR, ServiceCIDR: cfg.ServiceCIDR}
	var prevSlices map[string]Slice
	if prev != nil {
		prevSlices = prev.Slices
	}
	out.Slices = allocateSlices(prevSlices, idx, cfg, opts.Now, &report)
	out.Services, out.Released, err = allocateServices(prev, services, cfg, opts.Now, &report)
	if err != nil {
		return State{}, Report{}, fmt.Errorf("allocate: %w", err)
	}
	switch {
	case prev == nil || term > prev.Term:
		out.Seq = 1
	case out.Equal(prev):
		out.Seq = prev.Seq
	default:
		out.Seq = prev.Seq + 1
	}
	report.sort()
	return out, report, nil
}

// ServicesOf returns the Services of a desired state, their namespace set
// from the manifest's (specs defaults it to "default").
func ServicesOf(desired *specs.DesiredState) []*corev1.Service {
	if desired == nil {
		return nil
	}
	var out []*corev1.Service
	for _, o := range desired.Objects {
		svc, ok := o.Obj.(*corev1.Service)
		if !ok {
			continue
		}
		if svc.Namespace != o.Namespace {
			c := *svc
			c.Namespace = o.Namespace
			svc = &c
		}
		out = append(out, svc)
	}
	return out
}
