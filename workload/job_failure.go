package workload

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// failureAction is what a Job does with one failed pod.
type failureAction struct {
	// action is FailJob, Ignore or Count.
	action batchv1.PodFailurePolicyAction
	// why says which rule matched, for messages; "" when none did.
	why string
}

// classifyFailure applies a Job's podFailurePolicy to a failed or lost pod,
// as Kubernetes does: the rules in order, the first that matches decides;
// with no match (or no policy) the failure counts. onExitCodes looks at
// the exit codes of terminated containers (init containers first),
// leaving out exit code 0, restricted to containerName when given.
// onPodConditions matches a lost pod with the DisruptionTarget condition
// (status True, the default): losing a host is a disruption, not a fault
// of the pod. FailIndex (which needs backoffLimitPerIndex) counts.
func classifyFailure(policy *batchv1.PodFailurePolicy, p *JobPod) failureAction {
	if policy == nil {
		return failureAction{action: batchv1.PodFailurePolicyActionCount}
	}
	for i, rule := range policy.Rules {
		why := ""
		if r := rule.OnExitCodes; r != nil {
			if c, ok := matchExitCodes(r, p.Exits); ok {
				why = fmt.Sprintf("container %s exited %d, podFailurePolicy rule %d", c.Name, c.ExitCode, i)
			}
		}
		for _, pc := range rule.OnPodConditions {
			if why == "" && p.Phase == PodLost && pc.Type == corev1.DisruptionTarget && (pc.Status == "" || pc.Status == corev1.ConditionTrue) {
				why = fmt.Sprintf("pod lost with its host (DisruptionTarget), podFailurePolicy rule %d", i)
			}
		}
		if why == "" {
			continue
		}
		a := rule.Action
		if a != batchv1.PodFailurePolicyActionFailJob && a != batchv1.PodFailurePolicyActionIgnore {
			a = batchv1.PodFailurePolicyActionCount
		}
		return failureAction{action: a, why: why}
	}
	return failureAction{action: batchv1.PodFailurePolicyActionCount}
}

// matchExitCodes returns the first container whose exit matches r.
func matchExitCodes(r *batchv1.PodFailurePolicyOnExitCodesRequirement, exits []ContainerExit) (ContainerExit, bool) {
	for _, c := range exits {
		if c.ExitCode == 0 || r.ContainerName != nil && *r.ContainerName != c.Name {
			continue
		}
		in := slices.Contains(r.Values, int32(c.ExitCode))
		if in == (r.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) {
			return c, true
		}
	}
	return ContainerExit{}, false
}
