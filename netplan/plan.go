package netplan

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Service change actions, as `kelpie plan` marks them.
const (
	ServiceCreate = "create"
	ServiceUpdate = "update"
	ServiceDelete = "delete"
)

// ServiceChange is one change a candidate commit makes to the cluster's
// Services, as `kelpie plan --cluster` shows it.
type ServiceChange struct {
	// Action is ServiceCreate, ServiceUpdate or ServiceDelete.
	Action string `json:"action"`
	// Service is "NAMESPACE/NAME".
	Service string `json:"service"`
	// ClusterIP is the virtual IP the Service holds in the allocation in
	// force (or released lately: it takes it back), the one its manifest
	// asks for, "None" for a headless one, or "to be allocated" for a new
	// one the leader gives one to.
	ClusterIP string `json:"clusterIP"`
	// Ports are the Service's ports after the change ("80/TCP", with
	// " (node port 30080)" for a NodePort Service); before it for a
	// deleted one.
	Ports []string `json:"ports"`
	// Changes say what changes, one line each ("ports: 80/TCP → 80/TCP,
	// 443/TCP", "endpoints: +web-2 -web-0").
	Changes []string `json:"changes,omitempty"`
	// Selects are the pods the candidate's placement gives the Service
	// (its selector's matches, by name), ready or not; Ready is how many
	// ready endpoints it has now (-1 when the cluster did not say).
	Selects []string `json:"selects,omitempty"`
	Ready   int      `json:"ready"`
}

// String formats the change as one line: "+ default/web clusterIP 10.96.0.10".
func (c ServiceChange) String() string {
	mark := map[string]string{ServiceCreate: "+", ServiceUpdate: "~", ServiceDelete: "-"}[c.Action]
	return mark + " " + c.Service + " clusterIP " + c.ClusterIP
}

// PlanServicesInput is what PlanServices compares.
type PlanServicesInput struct {
	// Current and Candidate are the Services of the commit in force and of
	// the candidate (ServicesOf).
	Current, Candidate []*corev1.Service
	// Alloc is the allocation in force; nil before one.
	Alloc *State
	// CurrentPods and CandidatePods are the pods the placement in force
	// and the candidate's place in the cluster (namespace, name, labels;
	// no address is needed).
	CurrentPods, CandidatePods []Pod
	// Ready maps "NAMESPACE/NAME" to the ready endpoints a Service has now,
	// as the cluster reports it; a Service it lacks shows -1.
	Ready map[string]int
}

// PlanServices lists what a candidate changes in the cluster's Services:
// those it adds (with the IP they will hold, when known), removes (with the
// IP they release) and changes (type, clusterIP, ports, selector), and the
// Services whose selected pods change (endpoints, predicted from the
// selectors and the placements). It is pure; the changes are sorted by
// Service.
func PlanServices(in PlanServicesInput) []ServiceChange {
	cur, cand := byKey(in.Current), byKey(in.Candidate)
	var out []ServiceChange
	for _, k := range sortedKeys(cand) {
		svc := cand[k]
		held := in.allocOf(k)
		ch := ServiceChange{Service: k, Ports: portStrings(svc, held), Ready: in.ready(k)}
		ch.Selects = selects(svc, in.CandidatePods)
		old := cur[k]
		if old == nil {
			ch.Action, ch.ClusterIP = ServiceCreate, in.createdIP(k, svc, held)
			out = append(out, ch)
			continue
		}
		ch.Action, ch.ClusterIP = ServiceUpdate, heldIP(svc, held)
		ch.Changes = specChanges(old, svc, held)
		if svc.Spec.ClusterIP != old.Spec.ClusterIP {
			ch.ClusterIP = newIP(svc)
		}
		if d := diffNames(selects(old, in.CurrentPods), ch.Selects); d != "" {
			ch.Changes = append(ch.Changes, "endpoints: "+d)
		}
		if len(ch.Changes) > 0 {
			out = append(out, ch)
		}
	}
	for _, k := range sortedKeys(cur) {
		if cand[k] != nil {
			continue
		}
		svc, held := cur[k], in.allocOf(k)
		ip := heldIP(svc, held)
		if held.ClusterIP.IsValid() {
			ip += " (released)"
		}
		out = append(out, ServiceChange{Action: ServiceDelete, Service: k, ClusterIP: ip, Ports: portStrings(svc, held), Ready: in.ready(k)})
	}
	slices.SortStableFunc(out, func(a, b ServiceChange) int { return cmp.Compare(a.Service, b.Service) })
	return out
}

// allocOf returns what k holds in the allocation in force.
func (in *PlanServicesInput) allocOf(k string) ServiceAlloc {
	if in.Alloc == nil {
		return ServiceAlloc{}
	}
	return in.Alloc.Services[k]
}

// createdIP is the clusterIP a Service new in the candidate will have: the
// one it holds already, or the one it released less than a quarantine ago
// (it takes it back first), else newIP.
func (in *PlanServicesInput) createdIP(k string, svc *corev1.Service, held ServiceAlloc) string {
	if svc.Spec.ClusterIP == "" {
		if held.ClusterIP.IsValid() {
			return held.ClusterIP.String()
		}
		if in.Alloc != nil {
			for _, r := range in.Alloc.Released {
				if r.Service == k && r.IP.IsValid() {
					return r.IP.String() + " (taken back from quarantine)"
				}
			}
		}
	}
	return newIP(svc)
}

// ready returns the ready endpoints of k now, -1 when unknown.
func (in *PlanServicesInput) ready(k string) int {
	if n, ok := in.Ready[k]; ok {
		return n
	}
	return -1
}

// byKey indexes Services by NAMESPACE/NAME.
func byKey(svcs []*corev1.Service) map[string]*corev1.Service {
	m := make(map[string]*corev1.Service, len(svcs))
	for _, s := range svcs {
		if s != nil {
			m[ServiceKey(s)] = s
		}
	}
	return m
}

// newIP is the clusterIP a new Service will have.
func newIP(svc *corev1.Service) string {
	switch ip := svc.Spec.ClusterIP; ip {
	case corev1.ClusterIPNone:
		return "None"
	case "":
		return "to be allocated"
	default:
		return ip + " (from the manifest)"
	}
}

// heldIP is the clusterIP svc holds in the allocation.
func heldIP(svc *corev1.Service, held ServiceAlloc) string {
	switch {
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		return "None"
	case held.ClusterIP.IsValid():
		return held.ClusterIP.String()
	}
	return "to be allocated"
}

// portStrings formats the ports of svc with the node ports it holds.
func portStrings(svc *corev1.Service, held ServiceAlloc) []string {
	out := make([]string, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		out = append(out, portString(svc, p, held))
	}
	return out
}

// portString formats one port: "http 80/TCP→8080 (node port 30080)".
func portString(svc *corev1.Service, p corev1.ServicePort, held ServiceAlloc) string {
	s := PortKey(p)
	if p.Name != "" {
		s = p.Name + " " + s
	}
	if t := p.TargetPort.String(); t != "0" && t != "" && t != strconv.Itoa(int(p.Port)) {
		s += "→" + t
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort {
		np, ok := held.NodePorts[PortKey(p)]
		switch {
		case p.NodePort != 0:
			s += fmt.Sprintf(" (node port %d)", p.NodePort)
		case ok:
			s += fmt.Sprintf(" (node port %d)", np)
		default:
			s += " (node port to be allocated)"
		}
	}
	return s
}

// specChanges lists what changes between two versions of a Service.
func specChanges(old, svc *corev1.Service, held ServiceAlloc) []string {
	var out []string
	if a, b := serviceType(old), serviceType(svc); a != b {
		out = append(out, "type: "+a+" → "+b)
	}
	if a, b := old.Spec.ClusterIP, svc.Spec.ClusterIP; a != b {
		out = append(out, "clusterIP: "+orUnset(a)+" → "+orUnset(b))
	}
	if a, b := strings.Join(portStrings(old, held), ", "), strings.Join(portStrings(svc, held), ", "); a != b {
		out = append(out, "ports: "+a+" → "+b)
	}
	if a, b := formatSelector(old.Spec.Selector), formatSelector(svc.Spec.Selector); a != b {
		out = append(out, "selector: "+a+" → "+b)
	}
	return out
}

// serviceType is a Service's type, ClusterIP when unset.
func serviceType(s *corev1.Service) string {
	if s.Spec.Type == "" {
		return string(corev1.ServiceTypeClusterIP)
	}
	return string(s.Spec.Type)
}

// orUnset shows an empty manifest field as "(unset)".
func orUnset(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// formatSelector formats a selector as {k=v, …} in key order.
func formatSelector(sel map[string]string) string {
	parts := make([]string, 0, len(sel))
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		parts = append(parts, k+"="+sel[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// selects lists the pods of svc's namespace its selector matches, by name.
func selects(svc *corev1.Service, pods []Pod) []string {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	ns, _, _ := strings.Cut(ServiceKey(svc), "/")
	var out []string
	for i := range pods {
		if p := &pods[i]; p.Namespace == ns && matches(svc.Spec.Selector, p.Labels) {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// diffNames formats what b adds to and removes from a: "+web-2 -web-0", or
// "" when they are equal.
func diffNames(a, b []string) string {
	inA, inB := set(a), set(b)
	var parts []string
	for _, n := range b {
		if !inA[n] {
			parts = append(parts, "+"+n)
		}
	}
	for _, n := range a {
		if !inB[n] {
			parts = append(parts, "-"+n)
		}
	}
	return strings.Join(parts, " ")
}

// set indexes names.
func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
