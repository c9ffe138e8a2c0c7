package reconciler

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// LinkedService is a Service as the environment of the pods of its
// namespace sees it: its name, its virtual IP and its ports.
type LinkedService struct {
	Namespace string
	Name      string
	// ClusterIP is the Service's virtual IP as the allocation in force
	// gives it; a Service without one (headless, not allocated yet) is not
	// linked.
	ClusterIP string
	Ports     []LinkedPort
}

// LinkedPort is a port of a LinkedService.
type LinkedPort struct {
	// Name is the port's name; "" for the single unnamed port.
	Name string
	Port int32
	// Protocol is TCP, UDP or SCTP; "" means TCP.
	Protocol string
}

// ServiceEnv maps a namespace to the environment variables its pods get
// for the Services of that namespace (NAME_SERVICE_HOST and the rest; see
// NewServiceEnv).
type ServiceEnv map[string][]EnvVar

// NewServiceEnv builds the variables the kubelet gives a container for
// every Service of its namespace that has a virtual IP (k8s.io/kubernetes
// pkg/kubelet/envvars), by namespace, the Services in name order:
//
//	WEB_SERVICE_HOST=10.96.0.10
//	WEB_SERVICE_PORT=80                   (the first port)
//	WEB_SERVICE_PORT_HTTP=80              (each named port)
//	WEB_PORT=tcp://10.96.0.10:80          (Docker links: the first port,
//	WEB_PORT_80_TCP=tcp://10.96.0.10:80    then each port)
//	WEB_PORT_80_TCP_PROTO=tcp
//	WEB_PORT_80_TCP_PORT=80
//	WEB_PORT_80_TCP_ADDR=10.96.0.10
//
// Names are upper-cased with dashes (and dots) turned into underscores, and
// a leading digit gets an underscore in front, as the kubelet does.
func NewServiceEnv(svcs []LinkedService) ServiceEnv {
	sorted := slices.Clone(svcs)
	slices.SortStableFunc(sorted, func(a, b LinkedService) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var out ServiceEnv
	for _, s := range sorted {
		if s.ClusterIP == "" || s.ClusterIP == "None" || s.Name == "" {
			continue
		}
		if out == nil {
			out = ServiceEnv{}
		}
		out[s.Namespace] = append(out[s.Namespace], serviceVars(s)...)
	}
	return out
}

// serviceVars are the variables of one Service.
func serviceVars(s LinkedService) []EnvVar {
	prefix := envVarName(s.Name)
	vars := []EnvVar{{Name: prefix + "_SERVICE_HOST", Value: s.ClusterIP}}
	if len(s.Ports) == 0 {
		return vars
	}
	vars = append(vars, EnvVar{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(s.Ports[0].Port))})
	for _, p := range s.Ports {
		if p.Name != "" {
			vars = append(vars, EnvVar{Name: prefix + "_SERVICE_PORT_" + envVarName(p.Name), Value: strconv.Itoa(int(p.Port))})
		}
	}
	for i, p := range s.Ports {
		proto := strings.ToUpper(p.Protocol)
		if proto == "" {
			proto = "TCP"
		}
		lower := strings.ToLower(proto)
		url := lower + "://" + s.ClusterIP + ":" + strconv.Itoa(int(p.Port))
		if i == 0 {
			vars = append(vars, EnvVar{Name: prefix + "_PORT", Value: url})
		}
		pp := prefix + "_PORT_" + strconv.Itoa(int(p.Port)) + "_" + proto
		vars = append(vars,
			EnvVar{Name: pp, Value: url},
			EnvVar{Name: pp + "_PROTO", Value: lower},
			EnvVar{Name: pp + "_PORT", Value: strconv.Itoa(int(p.Port))},
			EnvVar{Name: pp + "_ADDR", Value: s.ClusterIP},
		)
	}
	return vars
}

// envVarName turns a Service or port name into a variable name part.
func envVarName(s string) string {
	n := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s))
	if n != "" && n[0] >= '0' && n[0] <= '9' {
		n = "_" + n
	}
	return n
}

// WithServiceEnv returns d with the Service variables of env added to
// every container (init containers included) of every pod that links
// Services (Pod.ServiceLinks), after the container's own variables: a name
// the container defines itself keeps its value, as with the kubelet. d is
// not modified.
//
// The variables are not part of a pod's spec hash: a new Service replaces
// no pod. As in Kubernetes, only containers created after a Service has its
// virtual IP see its variables. Unlike the kubelet's, $(VAR) references in
// the manifest's env values, command and args are resolved before and
// without them.
func (d Desired) WithServiceEnv(env ServiceEnv) Desired {
	if len(env) == 0 {
		return d
	}
	var pods []Pod
	for i := range d.Pods {
		p := &d.Pods[i]
		vars := env[p.Namespace]
		if !p.ServiceLinks || len(vars) == 0 {
			continue
		}
		if pods == nil {
			pods = slices.Clone(d.Pods)
		}
		np := &pods[i]
		np.InitContainers = withVars(p.InitContainers, vars)
		np.Containers = withVars(p.Containers, vars)
	}
	if pods != nil {
		d.Pods = pods
	}
	return d
}

// withVars returns copies of cs with vars appended to each container's
// environment, but for the names it defines already.
func withVars(cs []Container, vars []EnvVar) []Container {
	if len(cs) == 0 {
		return cs
	}
	out := slices.Clone(cs)
	for i := range out {
		c := &out[i]
		own := make(map[string]bool, len(c.Env))
		for _, e := range c.Env {
			own[e.Name] = true
		}
		env := slices.Clip(slices.Clone(c.Env))
		for _, v := range vars {
			if !own[v.Name] {
				env = append(env, v)
			}
		}
		c.Env = env
	}
	return out
}
