package reconciler

import "time"

// Probes are a container's health checks; a nil probe is not run.
type Probes struct {
	Liveness  *Probe
	Readiness *Probe
	Startup   *Probe
}

// Probe is a resolved health check: exactly one of Exec, HTTPGet,
// TCPSocket and GRPC is set, and timings are defaulted as in Kubernetes.
type Probe struct {
	// Exec runs this command in the container; exit 0 is success.
	Exec []string
	// HTTPGet requests a URL; a status of 200 to 399 is success.
	HTTPGet *HTTPGet
	// TCPSocket connects to a port; a connection is success.
	TCPSocket *TCPSocket
	// GRPC calls the standard health service (grpc.health.v1.Health/Check);
	// SERVING is success.
	GRPC *GRPC

	InitialDelay     time.Duration
	Timeout          time.Duration
	Period           time.Duration
	SuccessThreshold int
	FailureThreshold int
	// TerminationGrace, when set, replaces the pod's grace period for a
	// kill this probe asks for (liveness and startup).
	TerminationGrace *time.Duration
}

// HTTPGet is an HTTP probe.
type HTTPGet struct {
	Path string
	// Port is a number; a named port of the manifest is resolved already.
	Port int
	// Scheme is HTTP or HTTPS.
	Scheme string
	// Host defaults to the pod's IP when empty.
	Host    string
	Headers []Header
}

// Header is one HTTP header of a probe request.
type Header struct {
	Name  string
	Value string
}

// TCPSocket is a TCP probe.
type TCPSocket struct {
	// Port is a number; a named port of the manifest is resolved already.
	Port int
	// Host defaults to the pod's IP when empty.
	Host string
}

// GRPC is a gRPC health probe.
type GRPC struct {
	// Port is the port of the health service on the pod's address.
	Port int
	// Service is the service name sent in the request ("" for the server).
	Service string
}
