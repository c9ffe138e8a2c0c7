// Package workload holds the pure lifecycle rules of workloads over time:
// container probes (Tracker), restarts and their back-off (DecideRestart),
// the Job controller (SyncJob) and the CronJob scheduler (ScheduleCron).
//
// Everything here takes values and returns values: no I/O, no goroutines,
// no clock (the time is always passed in) and no randomness, so the same
// inputs give the same decision on every host and every leader. The
// agent, the leader and the runtime wire these rules to real probes,
// containers and the cluster state; they decide nothing the values
// returned here do not already say. docs/workloads.md describes the rules
// and where kelpie deliberately differs from Kubernetes.
package workload
