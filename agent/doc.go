// Package agent owns the loop that keeps one host in the state of a git
// branch: it joins source (what the branch says), specs (is it valid),
// reconciler (what must change) and the host runtime (make it so), and
// serves what it sees over HTTP (health, Prometheus metrics, a JSON status,
// a sync trigger and the git webhook).
//
// The agent is wiring: every decision about manifests, plans or containers
// is made by the packages it calls. What it adds is the loop itself (one
// select over triggers, runtime events, timers and shutdown; see
// [Agent.Run]), the classification of what went wrong (a refused commit
// stalls until a newer one, a transient failure is retried with back-off),
// and the state that must survive a restart (state.json, written
// atomically).
//
// The agent never stops a workload by stopping: when Run returns, every
// container keeps running, and a restarted agent that finds the host
// converged plans nothing.
package agent
