package agent

import (
	"fmt"
	"strconv"

	"github.com/kelpie-dev/kelpie/netplan"
)

// ServiceStatus is one Service as this host serves it.
type ServiceStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ClusterIP is the virtual IP, "None" for a headless Service, "" while
	// the Service has none (not allocated yet, or refused: the leader's
	// status says why).
	ClusterIP string `json:"clusterIP"`
	// Type is LoadBalancer for a LoadBalancer Service, else "".
	Type string `json:"type,omitempty"`
	// Ingress are the addresses of the live hosts that serve a
	// LoadBalancer Service on its ports; Conflicts the ports a host could
	// not serve ("port 80/TCP taken on host b by …").
	Ingress   []string `json:"ingress,omitempty"`
	Conflicts []string `json:"conflicts,omitempty"`
	// Endpoints counts the distinct ready pod addresses behind it,
	// anywhere in the cluster.
	Endpoints int `json:"endpoints"`
	// Ports are its ports with their node ports and endpoints.
	Ports []ServicePortStatus `json:"ports"`
}

// ServicePortStatus is one port of a Service.
type ServicePortStatus struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
	NodePort int32  `json:"nodePort,omitempty"`
	// Endpoints are "IP:PORT" of the ready pods behind the port.
	Endpoints []string `json:"endpoints"`
}

// String formats the port as "80/TCP", with ":30080" for a node port.
func (p ServicePortStatus) String() string {
	s := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
	if p.NodePort != 0 {
		s += ":" + strconv.Itoa(int(p.NodePort))
	}
	return s
}

// serviceStatus converts a resolved Service.
func serviceStatus(s *netplan.Service) ServiceStatus {
	st := ServiceStatus{Namespace: s.Namespace, Name: s.Name, Endpoints: endpointCount(s), Ports: make([]ServicePortStatus, 0, len(s.Ports))}
	switch {
	case s.Headless:
		st.ClusterIP = "None"
	case s.ClusterIP.IsValid():
		st.ClusterIP = s.ClusterIP.String()
	}
	if s.LoadBalancer {
		st.Type = "LoadBalancer"
	}
	for _, p := range s.Ports {
		ps := ServicePortStatus{Name: p.Name, Protocol: string(p.Protocol), Port: p.Port, NodePort: p.NodePort, Endpoints: make([]string, 0, len(p.Endpoints))}
		for _, e := range p.Endpoints {
			ps.Endpoints = append(ps.Endpoints, e.IP.String()+":"+strconv.Itoa(int(e.Port)))
		}
		st.Ports = append(st.Ports, ps)
	}
	return st
}
