// Package probe makes the network health checks of containers, as the
// kubelet's prober makes them: an HTTP GET (httpGet), a TCP connection
// (tcpSocket) and a call of the standard gRPC health service (grpc), from
// the host to a pod's address. Each check is one synchronous function that
// returns within its timeout, with a verdict and a few words saying what
// happened ("HTTP 503", "connection refused", "timeout after 1s").
//
// It owns which addresses a probe may reach (Target): the pod's own IP, or
// the host's loopback for a pod in the host's network, never another host
// a manifest names. It never talks to containerd (exec probes run in the
// container: package host does them) and never decides when to probe or
// what a result means.
package probe
