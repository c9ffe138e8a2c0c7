// Package network is the host side of pod networking: the CNI
// configurations kelpie writes (the default bridge network on this host's
// pod subnet and the extra kelpie Networks), the pods' persistent network
// namespaces and their sandbox records under the state dir, and the CNI
// ADD and DEL that join and leave them, including the masquerade rules the
// bridge plugin leaves behind when a pod's namespace is already gone
// (Host: Setup, Teardown, Sandboxes, EnsureNetwork, RemoveNetwork,
// Networks).
//
// It never talks to containerd and never decides which pods or networks
// a host should have.
package network
