package reconciler

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kelpie-dev/kelpie/specs"
)

// A DaemonSet with updateStrategy RollingUpdate has one pod on each host
// that runs it; rolled out across hosts, at most maxUnavailable of those
// hosts have their pod down or not yet available at once. Each host plans
// only its own pod, so on the host the rollout is that of a workload of
// one replica (daemonSetRollout): replaced at once when the host is alone,
// and, in a cluster, only when the leader allows it
// (PlanOptions.RolloutAllowed, from scheduler.PaceRollouts over the
// groups the leader builds from RolloutWorkloads).

// daemonSetRollout is the update strategy of a defaulted DaemonSet as one
// host sees it: OnDelete, or a rolling update of its one pod that counts
// it available once Ready for minReadySeconds.
func daemonSetRollout(o *appsv1.DaemonSet) Rollout {
	if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		return Rollout{OnDelete: true}
	}
	return Rollout{Rolling: true, MaxUnavailable: 1, Replicas: 1, MinReady: time.Duration(o.Spec.MinReadySeconds) * time.Second}
}

// DefaultProgressDeadline is Kubernetes' default progressDeadlineSeconds.
const DefaultProgressDeadline = 600 * time.Second

// RolloutWorkload is a Deployment or DaemonSet as a rollout across the
// cluster sees it: what every host must run, whichever host asks.
type RolloutWorkload struct {
	// Kind is "Deployment" or "DaemonSet".
	Kind            string
	Namespace, Name string
	// Hash is the spec hash of its pods: the same on every host.
	Hash string
	// Replicas is a Deployment's replica count (pods NAME-0 …); 0 for a
	// DaemonSet (one pod a host, DaemonSetPodName).
	Replicas int
	// Rollout is its pods' strategy (for a DaemonSet, as one host sees it).
	Rollout Rollout
	// MaxUnavailable is a rolling DaemonSet's
	// spec.updateStrategy.rollingUpdate.maxUnavailable, to resolve against
	// the number of hosts that run it (scheduler.DaemonSetMaxUnavailable);
	// nil for a Deployment.
	MaxUnavailable *intstr.IntOrString
	// NodeSelector is its pod template's: the hosts a DaemonSet runs on.
	NodeSelector map[string]string
	// ProgressDeadline is a Deployment's progressDeadlineSeconds: a
	// rollout that makes no progress for that long is stalled. Zero for a
	// DaemonSet (Kubernetes has none for them).
	ProgressDeadline time.Duration
}

// Key is "NAMESPACE/NAME".
func (w RolloutWorkload) Key() string { return JoinName(w.Namespace, w.Name) }

// RolloutWorkloads lists the Deployments and DaemonSets of state in object
// order, with the spec hash of their pods, independently of any host (a
// nodeSelector that the asking host does not match leaves them in).
// Workloads whose pods cannot be built (only an unvalidated state) are
// left out. Pure; nil for a nil state.
func RolloutWorkloads(state *specs.DesiredState) []RolloutWorkload {
	if state == nil {
		return nil
	}
	var out []RolloutWorkload
	for _, obj := range state.Objects {
		switch o := obj.Obj.(type) {
		case *appsv1.Deployment:
			b, err := newPodBuilder(state, obj, &o.Spec.Template)
			if err != nil {
				continue
			}
			replicas := 1
			if o.Spec.Replicas != nil {
				replicas = int(*o.Spec.Replicas)
			}
			deadline := DefaultProgressDeadline
			if d := o.Spec.ProgressDeadlineSeconds; d != nil {
				deadline = time.Duration(*d) * time.Second
			}
			out = append(out, RolloutWorkload{Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name, Hash: b.hash,
				Replicas: replicas, Rollout: rolloutOf(o, replicas), NodeSelector: o.Spec.Template.Spec.NodeSelector,
				ProgressDeadline: deadline})
		case *appsv1.DaemonSet:
			b, err := newPodBuilder(state, obj, &o.Spec.Template)
			if err != nil {
				continue
			}
			w := RolloutWorkload{Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name, Hash: b.hash,
				Rollout: daemonSetRollout(o), NodeSelector: o.Spec.Template.Spec.NodeSelector}
			if ru := o.Spec.UpdateStrategy.RollingUpdate; w.Rollout.Rolling && ru != nil {
				w.MaxUnavailable = ru.MaxUnavailable
			}
			out = append(out, w)
		}
	}
	return out
}

// DaemonSetPodName is the name of DaemonSet name's pod on host (as Expand
// names it).
func DaemonSetPodName(name, host string) string { return name + "-" + podNameHost(host) }
