package reconciler

import (
	"time"

	"github.com/kelpie-dev/kelpie/workload"
)

// jobPodObserved is what the Job controller needs of a Job's pod, derived
// from the runtime's view of it (jobPodState).
type jobPodObserved struct {
	Phase      workload.PodPhase
	Ready      bool
	Restarts   int
	Exits      []workload.ContainerExit
	FinishedAt time.Time
}

// jobPodState derives a Job pod's phase as the kubelet does, from its
// observed containers, its restart policy and the names of its init and
// app containers (in manifest order):
//
//   - Failed: restartPolicy Never and an init container exited non-zero,
//     or every app container exited and one of them non-zero;
//   - Succeeded: every app container exited 0;
//   - Running: an app container runs, or (OnFailure) one exited non-zero
//     and waits for its restart;
//   - Pending: anything else (sandbox or containers not made yet).
//
// Exits lists the exit codes of the exited containers, init containers
// first; Restarts sums the containers' restarts; FinishedAt is when the
// last app container of a finished pod stopped (zero when unknown).
func jobPodState(a *ActualPod, policy RestartPolicy, inits, apps []string) jobPodObserved {
	var o jobPodObserved
	state := make(map[string]ActualContainer, len(a.Containers))
	for _, c := range a.Containers {
		state[c.Name] = c
		o.Restarts += c.Restarts
	}
	for _, names := range [][]string{inits, apps} {
		for _, n := range names {
			if c, ok := state[n]; ok && c.State == Exited {
				o.Exits = append(o.Exits, workload.ContainerExit{Name: n, ExitCode: c.ExitCode})
			}
		}
	}
	for _, n := range inits {
		if c, ok := state[n]; ok && c.State == Exited && c.ExitCode != 0 && policy == RestartNever {
			o.Phase, o.FinishedAt = workload.PodFailed, c.FinishedAt
			return o
		}
	}
	running, exited, failed := 0, 0, 0
	for _, n := range apps {
		c, ok := state[n]
		if !ok {
			continue
		}
		switch c.State {
		case Running:
			running++
		case Exited:
			exited++
			if c.ExitCode != 0 {
				failed++
			}
			if c.FinishedAt.After(o.FinishedAt) {
				o.FinishedAt = c.FinishedAt
			}
		}
	}
	switch {
	case len(apps) > 0 && exited == len(apps) && failed == 0:
		o.Phase = workload.PodSucceeded
	case len(apps) > 0 && exited == len(apps) && policy == RestartNever:
		o.Phase = workload.PodFailed
	case running > 0 || (exited > 0 && a.SandboxReady):
		o.Phase, o.FinishedAt = workload.PodRunning, time.Time{}
		o.Ready = running == len(apps) && a.SandboxReady
	default:
		o.Phase, o.FinishedAt = workload.PodPending, time.Time{}
	}
	return o
}

// jobPodDone reports whether a Job's pod has finished (Succeeded or
// Failed): the planner then leaves it as it is, its containers and logs
// kept until the Job controller deletes it.
func jobPodDone(d *Pod, a *ActualPod) bool {
	ph := jobPodState(a, d.RestartPolicy, containerNames(d.InitContainers), containerNames(d.Containers)).Phase
	return ph == workload.PodSucceeded || ph == workload.PodFailed
}

// containerNames lists the names of containers, in order.
func containerNames(cs []Container) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}
