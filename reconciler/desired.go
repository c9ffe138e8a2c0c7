package reconciler

import "github.com/kelpie-dev/kelpie/specs"

// Desired is what one host should run: the result of Expand, and the
// input of Plan. Every list is sorted (pods and claims by namespace, then
// name with numeric parts in numeric order; networks by name).
type Desired struct {
	Pods     []Pod
	Networks []Network
	Claims   []Claim
	// Remove lists pods to delete although pruning is off: the pods of Jobs
	// that the Job controller (SyncJobs) deletes (an earlier template's,
	// one past ttlSecondsAfterFinished, a running one of a finished Job).
	// A pod listed here is never also in Pods.
	Remove []Removal `json:",omitempty"`
}

// Removal is a pod to delete, and why.
type Removal struct {
	Namespace string
	Name      string
	Reason    string
}

// Network is a kelpie.dev/v1alpha1 Network to create on the host.
type Network struct {
	Name string
	// Type is bridge, macvlan or ipvlan.
	Type string
	// Subnet is the CIDR host-local IPAM allocates from.
	Subnet string
	// Gateway is the gateway address (defaulted for bridges).
	Gateway string
	// Master is the parent interface of a macvlan or ipvlan network.
	Master string
	// Isolated networks get no masquerade and no route out.
	Isolated bool
	// Hash is the canonical hash of the Network object; the runtime labels
	// the network with it (LabelSpecHash).
	Hash string
}

// Claim is a PersistentVolumeClaim: a named local volume on the host that
// outlives every pod. Plan creates claims and never deletes them. A Claim
// is also the VolumeSource of a pod volume that uses it.
type Claim struct {
	Namespace string
	Name      string
	// StorageBytes is the requested size. Local volumes do not enforce it.
	StorageBytes int64
}

// Host is the machine Expand plans for.
type Host struct {
	// Name is the host's name; DaemonSet pods are named NAME-<host name>.
	// An empty name counts as "localhost".
	Name string
	// Labels are matched by nodeSelector. Expand adds
	// kubernetes.io/hostname=Name unless Labels sets it.
	Labels map[string]string
}

// HostnameLabel is the label every host carries implicitly, as in Kubernetes.
const HostnameLabel = "kubernetes.io/hostname"

// Notice reports a manifest object, or part of one, that Expand did not
// turn into something that runs on this host, and why. Nothing desired is
// ever dropped without one.
type Notice struct {
	// APIVersion and Key identify the manifest object.
	APIVersion string
	Key        specs.Key
	// Message says what happened, e.g. "not yet supported by the host runtime; not run".
	Message string
}

// String formats the notice as "batch/v1 Job default/backup: MESSAGE".
func (n Notice) String() string {
	name := n.Key.Name
	if n.Key.Namespace != "" {
		name = n.Key.Namespace + "/" + name
	}
	return n.APIVersion + " " + n.Key.Kind + " " + name + ": " + n.Message
}
