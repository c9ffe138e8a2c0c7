package specs

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// KelpieAPIVersion is the apiVersion of kelpie's own kinds.
const KelpieAPIVersion = "kelpie.dev/v1alpha1"

// NetworksAnnotation on a pod template lists the extra Networks (comma
// separated) a pod joins besides the host's default pod network.
const NetworksAnnotation = "kelpie.dev/networks"

// Network types accepted in NetworkSpec.Type.
const (
	NetworkBridge  = "bridge"
	NetworkMacvlan = "macvlan"
	NetworkIPvlan  = "ipvlan"
)

// Network is kelpie.dev/v1alpha1 Network: a host-local CNI network the agent
// creates on each host. Networks are cluster-scoped.
type Network struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkSpec `json:"spec"`
}

// NetworkSpec describes a Network.
type NetworkSpec struct {
	// Type is the CNI plugin: bridge, macvlan or ipvlan.
	Type string `json:"type"`
	// Subnet is the CIDR host-local IPAM allocates from.
	Subnet string `json:"subnet"`
	// Gateway is the gateway address inside Subnet; defaults to its first address.
	Gateway string `json:"gateway,omitempty"`
	// Master is the parent interface of a macvlan or ipvlan network.
	Master string `json:"master,omitempty"`
	// Isolated networks get no masquerade and no route out.
	Isolated bool `json:"isolated,omitempty"`
}
