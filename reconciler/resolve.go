package reconciler

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kelpie-dev/kelpie/specs"
)

// podBuilder resolves the pods of one workload: the parts shared by every
// replica (hash, networks) once, the rest per pod.
type podBuilder struct {
	state *specs.DesiredState
	obj   *specs.Object
	tmpl  *corev1.PodTemplateSpec
	owner Owner
	hash  string
	// networks are the extra Networks of the kelpie.dev/networks annotation.
	networks []string
	// privileges are what the pod template asks of the host.
	privileges []specs.PrivilegeNeed
	// claims are the PersistentVolumeClaims a StatefulSet's pod gets from
	// its volume claim templates, by name; looked up before the state's.
	claims map[string]*corev1.PersistentVolumeClaim
	// notices about parts of the workload that were left out (once each).
	notices []Notice
	noted   map[string]bool
}

// newPodBuilder prepares the pods of obj, whose pod template is tmpl.
func newPodBuilder(state *specs.DesiredState, obj *specs.Object, tmpl *corev1.PodTemplateSpec) (*podBuilder, error) {
	b := &podBuilder{
		state: state, obj: obj, tmpl: tmpl,
		owner:    Owner{Kind: obj.Kind, Name: obj.Name},
		networks: splitNetworks(tmpl.Annotations[specs.NetworksAnnotation]),
		noted:    map[string]bool{},
	}
	h, err := specHash(state, obj.Namespace, b.owner, tmpl, b.networks)
	if err != nil {
		return nil, err
	}
	b.hash = h
	prefix := specs.PodSpecPath(obj.Kind)
	for _, n := range specs.PrivilegeNeeds(&tmpl.Spec) {
		if prefix != "" {
			n.Field = prefix + "." + n.Field
		}
		b.privileges = append(b.privileges, n)
	}
	return b, nil
}

// note records a notice about the workload, once per message.
func (b *podBuilder) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if b.noted[msg] {
		return
	}
	b.noted[msg] = true
	b.notices = append(b.notices, Notice{APIVersion: b.obj.APIVersion, Key: b.obj.Key(), Message: msg})
}

// pod resolves the pod called name (replica ordinal).
func (b *podBuilder) pod(name string, ordinal int) (Pod, error) {
	s := &b.tmpl.Spec
	p := Pod{
		Namespace:     b.obj.Namespace,
		Name:          name,
		Owner:         b.owner,
		Hash:          b.hash,
		HostNetwork:   s.HostNetwork,
		Networks:      slices.Clone(b.networks),
		RestartPolicy: RestartPolicy(s.RestartPolicy),
		Hostname:      hostname(name),
		Labels:        maps.Clone(b.tmpl.Labels),
		Privileges:    slices.Clone(b.privileges),
		ServiceLinks:  s.EnableServiceLinks == nil || *s.EnableServiceLinks,
	}
	if b.obj.Kind == specs.KindDeployment || b.obj.Kind == specs.KindStatefulSet {
		p.Ordinal = ordinal
	}
	if g := s.TerminationGracePeriodSeconds; g != nil {
		p.TerminationGracePeriod = time.Duration(*g) * time.Second
	}
	if sc := s.SecurityContext; sc != nil && sc.FSGroup != nil {
		p.FSGroup = clonePtr(sc.FSGroup)
	}
	vols, readOnly, err := b.volumes(p.Namespace, s.Volumes)
	if err != nil {
		return Pod{}, err
	}
	p.Volumes = vols
	for i := range s.InitContainers {
		c, err := b.container(&p, &s.InitContainers[i], readOnly)
		if err != nil {
			return Pod{}, err
		}
		p.InitContainers = append(p.InitContainers, c)
	}
	for i := range s.Containers {
		c, err := b.container(&p, &s.Containers[i], readOnly)
		if err != nil {
			return Pod{}, err
		}
		p.Containers = append(p.Containers, c)
	}
	return p, nil
}

// container resolves one container of pod p. readOnly names the volumes
// that are always mounted read-only.
func (b *podBuilder) container(p *Pod, c *corev1.Container, readOnly map[string]bool) (Container, error) {
	env, err := b.env(p.Namespace, p.Name, c)
	if err != nil {
		return Container{}, fmt.Errorf("container %s: %w", c.Name, err)
	}
	vars := envLookup(env)
	out := Container{
		Name:       c.Name,
		Image:      c.Image,
		PullPolicy: PullPolicy(c.ImagePullPolicy),
		Command:    expandAll(c.Command, vars),
		Args:       expandAll(c.Args, vars),
		Env:        env,
		WorkingDir: c.WorkingDir,
		Resources:  resources(c.Resources),
		Security:   security(b.tmpl.Spec.SecurityContext, c.SecurityContext),
		Probes: Probes{
			Liveness:  probe(c.LivenessProbe, c.Ports),
			Readiness: probe(c.ReadinessProbe, c.Ports),
			Startup:   probe(c.StartupProbe, c.Ports),
		},
	}
	for _, port := range c.Ports {
		out.Ports = append(out.Ports, Port{Name: port.Name, ContainerPort: port.ContainerPort, HostPort: port.HostPort, Protocol: string(port.Protocol)})
	}
	for _, m := range c.VolumeMounts {
		out.Mounts = append(out.Mounts, Mount{Volume: m.Name, Path: m.MountPath, SubPath: m.SubPath, ReadOnly: m.ReadOnly || readOnly[m.Name]})
	}
	return out, nil
}

// resources converts limits and requests to plain units; a request
// defaults to the limit, as in Kubernetes.
func resources(r corev1.ResourceRequirements) Resources {
	var out Resources
	if q, ok := r.Limits[corev1.ResourceMemory]; ok {
		out.MemoryLimit = q.Value()
	}
	if q, ok := r.Limits[corev1.ResourceCPU]; ok {
		out.CPUMilli = q.MilliValue()
	}
	out.MemoryRequest = out.MemoryLimit
	if q, ok := r.Requests[corev1.ResourceMemory]; ok {
		out.MemoryRequest = q.Value()
	}
	out.CPURequestMilli = out.CPUMilli
	if q, ok := r.Requests[corev1.ResourceCPU]; ok {
		out.CPURequestMilli = q.MilliValue()
	}
	return out
}

// security merges the pod's security context into the container's.
func security(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) Security {
	var s Security
	if pod != nil {
		s.SeccompUnconfined = pod.SeccompProfile != nil && pod.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined
		s.RunAsUser = clonePtr(pod.RunAsUser)
		s.RunAsGroup = clonePtr(pod.RunAsGroup)
		s.RunAsNonRoot = pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
		s.SupplementalGroups = slices.Clone(pod.SupplementalGroups)
		if pod.FSGroup != nil && !slices.Contains(s.SupplementalGroups, *pod.FSGroup) {
			s.SupplementalGroups = append(s.SupplementalGroups, *pod.FSGroup)
		}
	}
	if c == nil {
		return s
	}
	if c.RunAsUser != nil {
		s.RunAsUser = clonePtr(c.RunAsUser)
	}
	if c.RunAsGroup != nil {
		s.RunAsGroup = clonePtr(c.RunAsGroup)
	}
	if c.RunAsNonRoot != nil {
		s.RunAsNonRoot = *c.RunAsNonRoot
	}
	s.ReadOnlyRootFilesystem = c.ReadOnlyRootFilesystem != nil && *c.ReadOnlyRootFilesystem
	s.Privileged = c.Privileged != nil && *c.Privileged
	s.AllowPrivilegeEscalation = clonePtr(c.AllowPrivilegeEscalation)
	if sp := c.SeccompProfile; sp != nil {
		s.SeccompUnconfined = sp.Type == corev1.SeccompProfileTypeUnconfined
	}
	if caps := c.Capabilities; caps != nil {
		for _, cp := range caps.Add {
			s.CapAdd = append(s.CapAdd, string(cp))
		}
		for _, cp := range caps.Drop {
			s.CapDrop = append(s.CapDrop, string(cp))
		}
	}
	return s
}

// probe converts a probe, resolving named ports against the container's.
func probe(p *corev1.Probe, ports []corev1.ContainerPort) *Probe {
	if p == nil {
		return nil
	}
	out := &Probe{
		InitialDelay:     seconds(p.InitialDelaySeconds),
		Timeout:          seconds(p.TimeoutSeconds),
		Period:           seconds(p.PeriodSeconds),
		SuccessThreshold: int(p.SuccessThreshold),
		FailureThreshold: int(p.FailureThreshold),
	}
	switch {
	case p.Exec != nil:
		out.Exec = slices.Clone(p.Exec.Command)
	case p.HTTPGet != nil:
		h := &HTTPGet{Path: p.HTTPGet.Path, Port: portNumber(p.HTTPGet.Port, ports), Scheme: string(p.HTTPGet.Scheme), Host: p.HTTPGet.Host}
		for _, hd := range p.HTTPGet.HTTPHeaders {
			h.Headers = append(h.Headers, Header{Name: hd.Name, Value: hd.Value})
		}
		out.HTTPGet = h
	case p.TCPSocket != nil:
		out.TCPSocket = &TCPSocket{Port: portNumber(p.TCPSocket.Port, ports), Host: p.TCPSocket.Host}
	case p.GRPC != nil:
		g := &GRPC{Port: int(p.GRPC.Port)}
		if p.GRPC.Service != nil {
			g.Service = *p.GRPC.Service
		}
		out.GRPC = g
	}
	if g := p.TerminationGracePeriodSeconds; g != nil {
		d := time.Duration(*g) * time.Second
		out.TerminationGrace = &d
	}
	return out
}

// portNumber resolves a probe port: a number, or the name of a container
// port (validation guarantees it exists; 0 otherwise).
func portNumber(port intstr.IntOrString, ports []corev1.ContainerPort) int {
	if port.Type == intstr.Int {
		return int(port.IntVal)
	}
	for _, p := range ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort)
		}
	}
	return 0
}

// splitNetworks parses the kelpie.dev/networks annotation.
func splitNetworks(v string) []string {
	var out []string
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// hostname is a pod's host name: its name cut to 63 characters, without a
// trailing '-' or '.', as the kubelet does.
func hostname(name string) string {
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-.")
	}
	return name
}

// seconds converts whole seconds to a duration.
func seconds(s int32) time.Duration { return time.Duration(s) * time.Second }

// clonePtr returns a copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
