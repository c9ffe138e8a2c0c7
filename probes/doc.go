// Package probes runs the probes of the containers a host runs, for the
// agent and for a one-shot `kelpie apply`: it owns the I/O orchestration
// (one loop that starts the due probes, on ticks when asked; workers for
// the probes in flight, bounded; timers from an injected clock) and
// nothing else.
//
// It decides nothing of its own: workload.Tracker says when a probe is due
// and what its results mean (Ready, a kill), and a Prober makes one probe
// and kills a container. The engine never restarts a container either: it
// kills it and asks its owner to plan again (Config.OnChange), and the
// planner's restart rule (workload.DecideRestart) restarts it. The owner
// merges the engine's readiness into what it plans with (Engine.Observe),
// so that rollouts wait for Ready.
package probes
