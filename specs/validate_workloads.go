package specs

import (
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones validate the same on every host

	"github.com/robfig/cron/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// workload validates Deployments, DaemonSets, Jobs, CronJobs and Namespaces.
func (c *check) workload(obj any) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		s := &o.Spec
		c.count("spec.replicas", s.Replicas, MaxReplicas)
		c.selector("spec.selector", s.Selector, s.Template.Labels, "spec.template.metadata.labels")
		switch s.Strategy.Type {
		case appsv1.RecreateDeploymentStrategyType:
			if s.Strategy.RollingUpdate != nil {
				c.errorf("spec.strategy.rollingUpdate", "may not be set when strategy type is Recreate")
			}
		case appsv1.RollingUpdateDeploymentStrategyType:
			ru := s.Strategy.RollingUpdate
			surge := c.intOrPercent("spec.strategy.rollingUpdate.maxSurge", ru.MaxSurge, false)
			unavail := c.intOrPercent("spec.strategy.rollingUpdate.maxUnavailable", ru.MaxUnavailable, true)
			if surge && unavail && isZero(ru.MaxSurge) && isZero(ru.MaxUnavailable) {
				c.errorf("spec.strategy.rollingUpdate", "maxSurge and maxUnavailable may not both be 0")
			}
		default:
			c.errorf("spec.strategy.type", "unsupported value %q: want RollingUpdate or Recreate", s.Strategy.Type)
		}
		c.nonNegative("spec.minReadySeconds", int64(s.MinReadySeconds))
		if d := s.ProgressDeadlineSeconds; d != nil && *d <= s.MinReadySeconds {
			c.errorf("spec.progressDeadlineSeconds", "must be greater than minReadySeconds (%d), got %d", s.MinReadySeconds, *d)
		}
		c.nonNegativePtr("spec.revisionHistoryLimit", s.RevisionHistoryLimit)
		c.template("spec.template", &o.Spec.Template.ObjectMeta.Annotations, workloadService, o.Spec.Template.Labels)
		c.podSpec("spec.template.spec", &s.Template.Spec, workloadService)
	case *appsv1.DaemonSet:
		s := &o.Spec
		c.selector("spec.selector", s.Selector, s.Template.Labels, "spec.template.metadata.labels")
		switch s.UpdateStrategy.Type {
		case appsv1.RollingUpdateDaemonSetStrategyType:
			ru := s.UpdateStrategy.RollingUpdate
			unavail := c.intOrPercent("spec.updateStrategy.rollingUpdate.maxUnavailable", ru.MaxUnavailable, true)
			surge := c.intOrPercent("spec.updateStrategy.rollingUpdate.maxSurge", ru.MaxSurge, false)
			if surge && !isZero(ru.MaxSurge) {
				c.errorf("spec.updateStrategy.rollingUpdate.maxSurge", "a DaemonSet's maxSurge is not supported by kelpie: each host replaces its DaemonSet pod in place; leave it out or set it to 0")
			} else if surge && unavail && isZero(ru.MaxSurge) && isZero(ru.MaxUnavailable) {
				c.errorf("spec.updateStrategy.rollingUpdate", "maxSurge and maxUnavailable may not both be 0: the DaemonSet could never roll")
			}
		case appsv1.OnDeleteDaemonSetStrategyType:
		default:
			c.errorf("spec.updateStrategy.type", "unsupported value %q: want RollingUpdate or OnDelete", s.UpdateStrategy.Type)
		}
		c.nonNegative("spec.minReadySeconds", int64(s.MinReadySeconds))
		c.nonNegativePtr("spec.revisionHistoryLimit", s.RevisionHistoryLimit)
		c.template("spec.template", &s.Template.Annotations, workloadService, s.Template.Labels)
		c.podSpec("spec.template.spec", &s.Template.Spec, workloadService)
	case *appsv1.StatefulSet:
		c.statefulSet(o)
	case *batchv1.Job:
		c.jobSpec("spec", &o.Spec)
	case *batchv1.CronJob:
		s := &o.Spec
		if s.Schedule == "" {
			c.errorf("spec.schedule", "required")
		} else if strings.HasPrefix(s.Schedule, "TZ=") || strings.HasPrefix(s.Schedule, "CRON_TZ=") {
			c.errorf("spec.schedule", "a time zone in the schedule (TZ= or CRON_TZ=) is not allowed; use spec.timeZone")
		} else if sched, err := cron.ParseStandard(s.Schedule); err != nil {
			c.errorf("spec.schedule", "invalid cron schedule %q: %v", s.Schedule, err)
		} else if d, ok := sched.(cron.ConstantDelaySchedule); ok && (d.Delay < time.Minute || d.Delay%time.Minute != 0) {
			// A tick's Job is named by its minute (as in Kubernetes), so
			// ticks closer than a minute would share one Job.
			c.errorf("spec.schedule", "%q: a CronJob runs at most one Job a minute; use @every with a whole number of minutes", s.Schedule)
		}
		if tz := s.TimeZone; tz != nil {
			if *tz == "" || *tz == "Local" {
				c.errorf("spec.timeZone", "must name an IANA time zone such as Europe/Oslo, got %q", *tz)
			} else if _, err := time.LoadLocation(*tz); err != nil {
				c.errorf("spec.timeZone", "unknown time zone %q", *tz)
			}
		}
		switch s.ConcurrencyPolicy {
		case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
		default:
			c.errorf("spec.concurrencyPolicy", "unsupported value %q: want Allow, Forbid or Replace", s.ConcurrencyPolicy)
		}
		c.nonNegativePtr64("spec.startingDeadlineSeconds", s.StartingDeadlineSeconds)
		c.nonNegativePtr("spec.successfulJobsHistoryLimit", s.SuccessfulJobsHistoryLimit)
		c.nonNegativePtr("spec.failedJobsHistoryLimit", s.FailedJobsHistoryLimit)
		c.labels("spec.jobTemplate.metadata.labels", s.JobTemplate.Labels)
		c.jobSpec("spec.jobTemplate.spec", &s.JobTemplate.Spec)
	case interface{ GetName() string }:
		// Namespace: metadata only, checked by the caller.
	}
}

// jobSpec validates a Job spec (also inside a CronJob).
func (c *check) jobSpec(p string, s *batchv1.JobSpec) {
	c.count(joinPath(p, "parallelism"), s.Parallelism, MaxReplicas)
	c.count(joinPath(p, "completions"), s.Completions, MaxReplicas)
	c.nonNegativePtr(joinPath(p, "backoffLimit"), s.BackoffLimit)
	c.nonNegativePtr(joinPath(p, "ttlSecondsAfterFinished"), s.TTLSecondsAfterFinished)
	if d := s.ActiveDeadlineSeconds; d != nil && *d <= 0 {
		c.errorf(joinPath(p, "activeDeadlineSeconds"), "must be more than 0, got %d", *d)
	}
	c.template(joinPath(p, "template"), &s.Template.Annotations, workloadBatch, s.Template.Labels)
	c.podSpec(joinPath(p, "template.spec"), &s.Template.Spec, workloadBatch)
	if m := s.CompletionMode; m != nil {
		switch *m {
		case batchv1.NonIndexedCompletion:
		case batchv1.IndexedCompletion:
			if s.Completions == nil {
				c.errorf(joinPath(p, "completions"), "required when completionMode is Indexed")
			}
		default:
			c.errorf(joinPath(p, "completionMode"), "unsupported value %q: want NonIndexed or Indexed", *m)
		}
	}
	c.podFailurePolicy(joinPath(p, "podFailurePolicy"), s)
}

// maxFailureRules is Kubernetes' limit on podFailurePolicy rules.
const maxFailureRules = 20

// podFailurePolicy validates a Job's podFailurePolicy as Kubernetes does,
// within what kelpie runs: actions FailJob, Ignore and Count (FailIndex
// needs backoffLimitPerIndex, which kelpie does not have), onExitCodes,
// and onPodConditions of type DisruptionTarget (a pod lost with its host).
func (c *check) podFailurePolicy(p string, s *batchv1.JobSpec) {
	pol := s.PodFailurePolicy
	if pol == nil {
		return
	}
	if rp := s.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever {
		c.errorf(p, "requires spec.template.spec.restartPolicy Never, got %q", rp)
	}
	if len(pol.Rules) > maxFailureRules {
		c.errorf(joinPath(p, "rules"), "at most %d rules, got %d", maxFailureRules, len(pol.Rules))
	}
	names := map[string]bool{}
	for _, ct := range s.Template.Spec.InitContainers {
		names[ct.Name] = true
	}
	for _, ct := range s.Template.Spec.Containers {
		names[ct.Name] = true
	}
	for i, r := range pol.Rules {
		rp := indexPath(joinPath(p, "rules"), i)
		switch r.Action {
		case batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyActionCount:
		case batchv1.PodFailurePolicyActionFailIndex:
			c.errorf(rp+".action", "FailIndex is not supported by kelpie (it needs backoffLimitPerIndex); use FailJob, Ignore or Count")
		default:
			c.errorf(rp+".action", "unsupported value %q: want FailJob, Ignore or Count", r.Action)
		}
		switch {
		case r.OnExitCodes != nil && len(r.OnPodConditions) > 0:
			c.errorf(rp, "set onExitCodes or onPodConditions, not both")
		case r.OnExitCodes == nil && len(r.OnPodConditions) == 0:
			c.errorf(rp, "set onExitCodes or onPodConditions")
		}
		if e := r.OnExitCodes; e != nil {
			ep := rp + ".onExitCodes"
			if e.ContainerName != nil && !names[*e.ContainerName] {
				c.errorf(ep+".containerName", "no container %q in the pod template", *e.ContainerName)
			}
			if e.Operator != batchv1.PodFailurePolicyOnExitCodesOpIn && e.Operator != batchv1.PodFailurePolicyOnExitCodesOpNotIn {
				c.errorf(ep+".operator", "unsupported value %q: want In or NotIn", e.Operator)
			}
			if len(e.Values) == 0 || len(e.Values) > 255 {
				c.errorf(ep+".values", "want 1 to 255 exit codes, got %d", len(e.Values))
			}
			seen := map[int32]bool{}
			for j, v := range e.Values {
				vp := indexPath(ep+".values", j)
				switch {
				case v < 0 || v > 255:
					c.errorf(vp, "exit code %d out of range 0-255", v)
				case v == 0 && e.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn:
					c.errorf(vp, "exit code 0 never matches with operator In")
				case seen[v]:
					c.errorf(vp, "exit code %d listed twice", v)
				}
				seen[v] = true
			}
		}
		for j, pc := range r.OnPodConditions {
			cp := indexPath(rp+".onPodConditions", j)
			if pc.Type != corev1.DisruptionTarget {
				c.errorf(cp+".type", "condition %q is not supported by kelpie (supported: DisruptionTarget, a pod lost with its host)", pc.Type)
			}
			switch pc.Status {
			case "", corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown:
			default:
				c.errorf(cp+".status", "unsupported value %q: want True, False or Unknown", pc.Status)
			}
		}
	}
}

// template validates a pod template's metadata.
func (c *check) template(p string, annotations *map[string]string, _ workloadKind, labels map[string]string) {
	c.labels(joinPath(p, "metadata.labels"), labels)
	c.annotations(joinPath(p, "metadata.annotations"), *annotations)
	c.networksAnnotation(joinPath(p, "metadata.annotations"), *annotations)
}

// intOrPercent checks maxSurge/maxUnavailable: an integer ≥ 0 or "N%"
// (at most 100% when atMost100). It reports whether the value is valid.
func (c *check) intOrPercent(p string, v *intstr.IntOrString, atMost100 bool) bool {
	if v == nil {
		return true
	}
	if v.Type == intstr.Int {
		if v.IntVal < 0 {
			c.errorf(p, "must be 0 or more, got %d", v.IntVal)
			return false
		}
		return true
	}
	if msgs := validation.IsValidPercent(v.StrVal); len(msgs) > 0 {
		c.errorf(p, "must be an integer or a percentage such as 25%%, got %q", v.StrVal)
		return false
	}
	if pct, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%")); err == nil && atMost100 && pct > 100 {
		c.errorf(p, "must be at most 100%%, got %s", v.StrVal)
		return false
	}
	return true
}

// isZero reports whether an int-or-percent is 0 or "0%".
func isZero(v *intstr.IntOrString) bool {
	if v == nil {
		return true
	}
	if v.Type == intstr.Int {
		return v.IntVal == 0
	}
	return v.StrVal == "0%"
}

// count checks a replica count, when set: 0 ≤ *v ≤ max.
func (c *check) count(p string, v *int32, max int) {
	switch {
	case v == nil:
	case *v < 0:
		c.errorf(p, "must be 0 or more, got %d", *v)
	case int(*v) > max:
		c.errorf(p, "must be at most %d, got %d", max, *v)
	}
}

// nonNegative checks v ≥ 0.
func (c *check) nonNegative(p string, v int64) {
	if v < 0 {
		c.errorf(p, "must be 0 or more, got %d", v)
	}
}

// nonNegativePtr checks *v ≥ 0 when set.
func (c *check) nonNegativePtr(p string, v *int32) {
	if v != nil {
		c.nonNegative(p, int64(*v))
	}
}

// nonNegativePtr64 checks *v ≥ 0 when set.
func (c *check) nonNegativePtr64(p string, v *int64) {
	if v != nil {
		c.nonNegative(p, *v)
	}
}
