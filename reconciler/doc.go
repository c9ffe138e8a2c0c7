// Package reconciler owns planning and executing the convergence of one
// host. Expand turns a validated specs.DesiredState into the fully resolved
// pods, networks and volume claims this host should run; Plan compares them
// with the Actual state the runtime observed and returns the actions that
// close the gap, ordered in stages; Execute runs those very actions through
// the small Runtime interface declared here, with bounded parallelism.
// With PlanOptions.RollingUpdates, Plan replaces the changed pods of a
// Deployment a few at a time, as its strategy says (Rollout), and a caller
// plans again after each execution; ExecuteRollout does that for a
// one-shot caller.
//
// Expand and Plan are pure: they take values and return values, with no
// I/O, no goroutines and no clock (the time is injected through
// PlanOptions.Now). Only the executor runs concurrently. reconciler never
// imports containerd or CNI: package runtime/host implements Runtime, and it
// decides nothing that the values given to it do not already say.
package reconciler
