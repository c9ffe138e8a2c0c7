package reconciler

import (
	"time"
)

// Action is one step of a plan: what to do (Kind) to what (Subject), why
// (Reason), when (Stage) and with what (the payload matching the subject:
// Pod for pods and containers, Network for networks, Claim for claims).
// The payload is left out of JSON: a Pod may hold Secret data.
type Action struct {
	Kind    ActionKind `json:"kind"`
	Subject Subject    `json:"subject"`
	// Reason says why, for people: "not running", "spec changed: … → …",
	// "no longer desired", "container web exited 1, restart 3 after back-off 40s".
	Reason string `json:"reason"`
	// Stage orders the plan: every action of a stage completes before the
	// next stage starts; actions within a stage are independent.
	Stage Stage `json:"stage"`

	// Pod is the desired pod of a pod action (create, replace, update) and
	// of a container restart.
	Pod *Pod `json:"-"`
	// Network is the desired network of a network create or update.
	Network *Network `json:"-"`
	// Claim is the desired claim of a claim create.
	Claim *Claim `json:"-"`
	// Grace is how long the containers of the pod being removed (delete,
	// replace) get between SIGTERM and SIGKILL.
	Grace time.Duration `json:"-"`
}

// String formats the action for people, terraform style:
// "+ create pod default/web-0 (not running)".
func (a Action) String() string {
	s := a.Kind.symbol() + " " + string(a.Kind) + " " + a.Subject.String()
	if a.Reason != "" {
		s += " (" + a.Reason + ")"
	}
	return s
}

// ActionKind is what an action does.
type ActionKind string

// Action kinds.
const (
	// Create makes a missing network, claim or pod.
	Create ActionKind = "create"
	// Update converges an existing subject in place: a network's spec, a
	// pod's missing containers, a container restart.
	Update ActionKind = "update"
	// Replace removes a pod and creates it again from its new spec.
	Replace ActionKind = "replace"
	// Delete removes a pod or network no longer desired.
	Delete ActionKind = "delete"
)

// symbol is the action's terraform-style prefix.
func (k ActionKind) symbol() string {
	switch k {
	case Create:
		return "+"
	case Update:
		return "~"
	case Replace:
		return "-/+"
	case Delete:
		return "-"
	}
	return "?"
}

// SubjectType is the type of thing an action changes.
type SubjectType string

// Subject types.
const (
	// SubjectNetwork is a kelpie Network; Subject.Name is its name.
	SubjectNetwork SubjectType = "network"
	// SubjectClaim is a PersistentVolumeClaim's local volume.
	SubjectClaim SubjectType = "claim"
	// SubjectPod is a whole pod.
	SubjectPod SubjectType = "pod"
	// SubjectContainer is one container of a pod; Subject.Container names it.
	SubjectContainer SubjectType = "container"
)

// order is the rank of a subject type within a stage.
func (t SubjectType) order() int {
	switch t {
	case SubjectNetwork:
		return 0
	case SubjectClaim:
		return 1
	case SubjectPod:
		return 2
	}
	return 3
}

// Subject is what an action, a wait or a kept notice is about.
type Subject struct {
	Type SubjectType `json:"type"`
	// Namespace is empty for networks.
	Namespace string `json:"namespace,omitempty"`
	// Name is the network's, claim's or pod's name (for a container, its pod's).
	Name string `json:"name"`
	// Container names the container of a container subject.
	Container string `json:"container,omitempty"`
}

// String formats the subject: "network sensors", "claim default/db-data",
// "pod default/web-0", "container default/web-0/httpd".
func (s Subject) String() string {
	name := s.Name
	if s.Namespace != "" {
		name = s.Namespace + "/" + name
	}
	if s.Container != "" {
		name += "/" + s.Container
	}
	return string(s.Type) + " " + name
}

// less orders subjects by type, namespace, name and container.
func (s Subject) less(o Subject) bool {
	if s.Type.order() != o.Type.order() {
		return s.Type.order() < o.Type.order()
	}
	if s.Namespace != o.Namespace || s.Name != o.Name {
		return NamespacedLess(s.Namespace, s.Name, o.Namespace, o.Name)
	}
	return naturalLess(s.Container, o.Container)
}

// podSubject is the subject of pod namespace/name.
func podSubject(namespace, name string) Subject {
	return Subject{Type: SubjectPod, Namespace: namespace, Name: name}
}

// containerSubject is the subject of a container of pod p.
func containerSubject(namespace, name, container string) Subject {
	return Subject{Type: SubjectContainer, Namespace: namespace, Name: name, Container: container}
}

// Stage is the position of an action in a plan's order.
type Stage int

// Stages, in execution order.
const (
	// StageSetup creates and updates networks and claims, before any pod
	// that uses them.
	StageSetup Stage = iota
	// StageRemovePods deletes pods no longer desired, so that they free
	// host ports and resources before new pods start.
	StageRemovePods
	// StagePods replaces changed pods, creates missing ones and repairs
	// pods missing containers.
	StagePods
	// StageContainers restarts exited containers and starts created ones.
	StageContainers
	// StageTeardown deletes networks no pod uses any more.
	StageTeardown
)

// String names the stage.
func (s Stage) String() string {
	switch s {
	case StageSetup:
		return "setup"
	case StageRemovePods:
		return "remove-pods"
	case StagePods:
		return "pods"
	case StageContainers:
		return "containers"
	case StageTeardown:
		return "teardown"
	}
	return "stage-?"
}
