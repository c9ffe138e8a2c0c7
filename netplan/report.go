package netplan

import (
	"cmp"
	"fmt"
	"slices"
)

// Finding is one thing Allocate reports about a node or a Service.
type Finding struct {
	// Subject is "node NAME" or "service NAMESPACE/NAME".
	Subject string `json:"subject"`
	// Message says what happened or what is wrong, and why.
	Message string `json:"message"`
}

// String formats the finding as "SUBJECT: MESSAGE".
func (f Finding) String() string { return f.Subject + ": " + f.Message }

// Report is what Allocate found, for status and logs.
type Report struct {
	// Problems need an operator: a host without a slice, a Service without
	// its IP or node port.
	Problems []Finding `json:"problems,omitempty"`
	// Notes record changes worth knowing: slices released or reclaimed,
	// Service IPs freed.
	Notes []Finding `json:"notes,omitempty"`
}

// problem records a problem.
func (r *Report) problem(subject, format string, args ...any) {
	r.Problems = append(r.Problems, Finding{subject, fmt.Sprintf(format, args...)})
}

// note records a note.
func (r *Report) note(subject, format string, args ...any) {
	r.Notes = append(r.Notes, Finding{subject, fmt.Sprintf(format, args...)})
}

// sort orders the findings by subject, keeping each subject's in order.
func (r *Report) sort() {
	by := func(a, b Finding) int { return cmp.Compare(a.Subject, b.Subject) }
	slices.SortStableFunc(r.Problems, by)
	slices.SortStableFunc(r.Notes, by)
}

// For returns the problems about subject, e.g. Report.For("node n3"): an
// agent shows them as the reason it starts no pods.
func (r *Report) For(subject string) []string {
	var out []string
	for _, f := range r.Problems {
		if f.Subject == subject {
			out = append(out, f.Message)
		}
	}
	return out
}
