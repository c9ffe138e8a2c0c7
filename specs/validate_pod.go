package specs

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// workloadKind says which restart policies a pod spec may use.
type workloadKind int

const (
	workloadPod     workloadKind = iota // any restart policy
	workloadService                     // Deployment, DaemonSet: Always only
	workloadBatch                       // Job, CronJob: OnFailure or Never
)

// supportedResources are the resource names kelpie turns into limits or
// uses for placement.
var supportedResources = map[corev1.ResourceName]bool{
	corev1.ResourceCPU: true, corev1.ResourceMemory: true, corev1.ResourceEphemeralStorage: true,
}

// podSpec validates a pod spec at path.
func (c *check) podSpec(p string, s *corev1.PodSpec, wk workloadKind) {
	switch s.RestartPolicy {
	case corev1.RestartPolicyAlways:
		if wk == workloadBatch {
			c.errorf(joinPath(p, "restartPolicy"), "a Job's pods must use OnFailure or Never, not Always")
		}
	case corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
		if wk == workloadService {
			c.errorf(joinPath(p, "restartPolicy"), "must be Always for a %s", c.it.obj.Kind)
		}
	default:
		c.errorf(joinPath(p, "restartPolicy"), "unsupported value %q: want Always, OnFailure or Never", s.RestartPolicy)
	}
	if g := s.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		c.errorf(joinPath(p, "terminationGracePeriodSeconds"), "must be 0 or more, got %d", *g)
	}
	c.labels(joinPath(p, "nodeSelector"), s.NodeSelector)
	if sc := s.SecurityContext; sc != nil {
		c.ids(joinPath(p, "securityContext"), sc.RunAsUser, sc.RunAsGroup)
		if sc.FSGroup != nil && *sc.FSGroup < 0 {
			c.errorf(joinPath(p, "securityContext.fsGroup"), "must be 0 or more")
		}
		c.seccomp(joinPath(p, "securityContext.seccompProfile"), sc.SeccompProfile)
	}
	volumes := c.volumes(joinPath(p, "volumes"), s.Volumes)
	if len(s.Containers) == 0 {
		c.errorf(joinPath(p, "containers"), "required: at least one container")
	}
	if n := len(s.Containers) + len(s.InitContainers); n > MaxContainersPerPod {
		c.errorf(joinPath(p, "containers"), "a pod may have at most %d containers (init containers included), got %d", MaxContainersPerPod, n)
	}
	names := map[string]string{}
	hostPorts := map[string]string{}
	for i := range s.InitContainers {
		c.container(indexPath(joinPath(p, "initContainers"), i), &s.InitContainers[i], true, s.HostNetwork, volumes, names, hostPorts)
	}
	for i := range s.Containers {
		c.container(indexPath(joinPath(p, "containers"), i), &s.Containers[i], false, s.HostNetwork, volumes, names, hostPorts)
	}
}

// ids checks runAsUser and runAsGroup.
func (c *check) ids(p string, user, group *int64) {
	if user != nil && *user < 0 {
		c.errorf(joinPath(p, "runAsUser"), "must be 0 or more, got %d", *user)
	}
	if group != nil && *group < 0 {
		c.errorf(joinPath(p, "runAsGroup"), "must be 0 or more, got %d", *group)
	}
}

// volumes validates pod volumes and returns their names.
func (c *check) volumes(p string, vols []corev1.Volume) map[string]bool {
	names := map[string]bool{}
	for i := range vols {
		v := &vols[i]
		vp := indexPath(p, i)
		if v.Name == "" {
			c.errorf(joinPath(vp, "name"), "required")
		} else {
			for _, msg := range cleanMsgs(validation.IsDNS1123Label(v.Name)) {
				c.errorf(joinPath(vp, "name"), "invalid volume name %q: %s", v.Name, msg)
			}
			if names[v.Name] {
				c.errorf(joinPath(vp, "name"), "duplicate volume name %q", v.Name)
			}
			names[v.Name] = true
		}
		sources := 0
		if v.EmptyDir != nil {
			sources++
			if m := v.EmptyDir.Medium; m != corev1.StorageMediumDefault && m != corev1.StorageMediumMemory {
				c.errorf(joinPath(vp, "emptyDir.medium"), "unsupported value %q: want \"\" or Memory", m)
			}
		}
		if hp := v.HostPath; hp != nil {
			sources++
			c.hostPath(joinPath(vp, "hostPath"), hp)
		}
		if cm := v.ConfigMap; cm != nil {
			sources++
			if cm.Name == "" {
				c.errorf(joinPath(vp, "configMap.name"), "required")
			}
			c.ref(joinPath(vp, "configMap.name"), KindConfigMap, cm.Name, "", cm.Optional != nil && *cm.Optional)
			c.keyItems(joinPath(vp, "configMap.items"), cm.Items, KindConfigMap, cm.Name, cm.Optional)
			c.mode(joinPath(vp, "configMap.defaultMode"), cm.DefaultMode)
		}
		if sec := v.Secret; sec != nil {
			sources++
			if sec.SecretName == "" {
				c.errorf(joinPath(vp, "secret.secretName"), "required")
			}
			c.ref(joinPath(vp, "secret.secretName"), KindSecret, sec.SecretName, "", sec.Optional != nil && *sec.Optional)
			c.keyItems(joinPath(vp, "secret.items"), sec.Items, KindSecret, sec.SecretName, sec.Optional)
			c.mode(joinPath(vp, "secret.defaultMode"), sec.DefaultMode)
		}
		if pvc := v.PersistentVolumeClaim; pvc != nil {
			sources++
			if pvc.ClaimName == "" {
				c.errorf(joinPath(vp, "persistentVolumeClaim.claimName"), "required")
			}
			c.ref(joinPath(vp, "persistentVolumeClaim.claimName"), KindPersistentVolumeClaim, pvc.ClaimName, "", false)
		}
		if sources > 1 {
			c.errorf(vp, "volume %q has %d sources; give exactly one", v.Name, sources)
		}
	}
	return names
}

// hostPathTypes are the accepted hostPath types.
var hostPathTypes = map[corev1.HostPathType]bool{
	corev1.HostPathUnset: true, corev1.HostPathDirectoryOrCreate: true, corev1.HostPathDirectory: true,
	corev1.HostPathFileOrCreate: true, corev1.HostPathFile: true, corev1.HostPathSocket: true,
	corev1.HostPathCharDev: true, corev1.HostPathBlockDev: true,
}

// hostPath validates a hostPath volume source (the allow-list of host
// prefixes is the host's to enforce; here the path must be clean and absolute).
func (c *check) hostPath(p string, hp *corev1.HostPathVolumeSource) {
	switch {
	case hp.Path == "":
		c.errorf(joinPath(p, "path"), "required")
	case !strings.HasPrefix(hp.Path, "/"):
		c.errorf(joinPath(p, "path"), "must be an absolute path, got %q", hp.Path)
	case hasDotDot(hp.Path):
		c.errorf(joinPath(p, "path"), "must not contain '..', got %q", hp.Path)
	}
	if hp.Type != nil && !hostPathTypes[*hp.Type] {
		c.errorf(joinPath(p, "type"), "unsupported value %q", *hp.Type)
	}
}

// keyItems validates the items projected from a ConfigMap or Secret.
func (c *check) keyItems(p string, items []corev1.KeyToPath, kind, name string, optional *bool) {
	paths := map[string]bool{}
	for i, it := range items {
		ip := indexPath(p, i)
		if it.Key == "" {
			c.errorf(joinPath(ip, "key"), "required")
		} else {
			c.ref(joinPath(ip, "key"), kind, name, it.Key, optional != nil && *optional)
		}
		c.relativePath(joinPath(ip, "path"), it.Path, true)
		if paths[it.Path] {
			c.errorf(joinPath(ip, "path"), "duplicate path %q", it.Path)
		}
		paths[it.Path] = true
		c.mode(joinPath(ip, "mode"), it.Mode)
	}
}

// mode checks a file mode.
func (c *check) mode(p string, m *int32) {
	if m != nil && (*m < 0 || *m > 0o777) {
		c.errorf(p, "file mode %#o out of range 0 to 0777", *m)
	}
}

// relativePath checks a path that must stay inside a directory.
func (c *check) relativePath(p, v string, required bool) {
	switch {
	case v == "":
		if required {
			c.errorf(p, "required")
		}
	case strings.HasPrefix(v, "/"):
		c.errorf(p, "must be a relative path, got %q", v)
	case hasDotDot(v):
		c.errorf(p, "must not contain '..', got %q", v)
	}
}

// hasDotDot reports whether a slash path has a ".." element.
func hasDotDot(v string) bool {
	for _, el := range strings.Split(v, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// container validates one container. names and hostPorts collect what must
// be unique across the pod.
func (c *check) container(p string, ct *corev1.Container, init, hostNetwork bool, volumes map[string]bool, names, hostPorts map[string]string) {
	if ct.Name == "" {
		c.errorf(joinPath(p, "name"), "required")
	} else {
		for _, msg := range cleanMsgs(validation.IsDNS1123Label(ct.Name)) {
			c.errorf(joinPath(p, "name"), "invalid container name %q: %s", ct.Name, msg)
		}
		if prev, dup := names[ct.Name]; dup {
			c.errorf(joinPath(p, "name"), "duplicate container name %q (also %s)", ct.Name, prev)
		}
		names[ct.Name] = p
	}
	switch {
	case ct.Image == "":
		c.errorf(joinPath(p, "image"), "required")
	case strings.TrimSpace(ct.Image) != ct.Image || strings.ContainsAny(ct.Image, " \t\n"):
		c.errorf(joinPath(p, "image"), "image reference %q contains whitespace", ct.Image)
	}
	switch ct.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		c.errorf(joinPath(p, "imagePullPolicy"), "unsupported value %q: want Always, IfNotPresent or Never", ct.ImagePullPolicy)
	}
	if ct.WorkingDir != "" && !strings.HasPrefix(ct.WorkingDir, "/") {
		c.errorf(joinPath(p, "workingDir"), "must be an absolute path, got %q", ct.WorkingDir)
	}
	if n := len(ct.Ports); n > MaxPortsPerContainer {
		c.errorf(joinPath(p, "ports"), "a container may have at most %d ports, got %d", MaxPortsPerContainer, n)
	}
	if n := len(ct.Env) + len(ct.EnvFrom); n > MaxEnvPerContainer {
		at := "env"
		if len(ct.Env) == 0 {
			at = "envFrom"
		}
		c.errorf(joinPath(p, at), "a container may have at most %d env and envFrom entries, got %d", MaxEnvPerContainer, n)
	}
	portNames := c.ports(joinPath(p, "ports"), ct.Ports, hostNetwork, hostPorts)
	c.env(joinPath(p, "env"), ct.Env)
	c.envFrom(joinPath(p, "envFrom"), ct.EnvFrom)
	c.mounts(joinPath(p, "volumeMounts"), ct.VolumeMounts, volumes)
	c.resources(joinPath(p, "resources"), ct.Resources.Requests, ct.Resources.Limits)
	if init && (ct.LivenessProbe != nil || ct.ReadinessProbe != nil || ct.StartupProbe != nil) {
		c.errorf(p, "init containers cannot have probes")
	}
	c.probe(joinPath(p, "livenessProbe"), ct.LivenessProbe, portNames, true)
	c.probe(joinPath(p, "readinessProbe"), ct.ReadinessProbe, portNames, false)
	c.probe(joinPath(p, "startupProbe"), ct.StartupProbe, portNames, true)
	if sc := ct.SecurityContext; sc != nil {
		c.ids(joinPath(p, "securityContext"), sc.RunAsUser, sc.RunAsGroup)
		c.capabilities(joinPath(p, "securityContext.capabilities"), sc.Capabilities)
		c.seccomp(joinPath(p, "securityContext.seccompProfile"), sc.SeccompProfile)
	}
}

// ports validates container ports and returns their names.
func (c *check) ports(p string, ports []corev1.ContainerPort, hostNetwork bool, hostPorts map[string]string) map[string]bool {
	names := map[string]bool{}
	for i, port := range ports {
		pp := indexPath(p, i)
		c.portNumber(joinPath(pp, "containerPort"), port.ContainerPort, true)
		c.portNumber(joinPath(pp, "hostPort"), port.HostPort, false)
		c.protocol(joinPath(pp, "protocol"), port.Protocol)
		if port.Name != "" {
			for _, msg := range cleanMsgs(validation.IsValidPortName(port.Name)) {
				c.errorf(joinPath(pp, "name"), "invalid port name %q: %s", port.Name, msg)
			}
			if names[port.Name] {
				c.errorf(joinPath(pp, "name"), "duplicate port name %q", port.Name)
			}
			names[port.Name] = true
		}
		if port.HostPort != 0 {
			if hostNetwork && port.HostPort != port.ContainerPort {
				c.errorf(joinPath(pp, "hostPort"), "with hostNetwork, hostPort must equal containerPort (%d)", port.ContainerPort)
			}
			key := fmt.Sprintf("%d/%s", port.HostPort, port.Protocol)
			if prev, dup := hostPorts[key]; dup {
				c.errorf(joinPath(pp, "hostPort"), "host port %s is already used by %s", key, prev)
			}
			hostPorts[key] = pp
		}
	}
	return names
}

// portNumber checks a port is in range (0 allowed when optional).
func (c *check) portNumber(p string, v int32, required bool) {
	if v == 0 && !required {
		return
	}
	if v < 1 || v > 65535 {
		c.errorf(p, "port %d out of range 1 to 65535", v)
	}
}

// protocol checks a port protocol.
func (c *check) protocol(p string, proto corev1.Protocol) {
	switch proto {
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
	default:
		c.errorf(p, "unsupported protocol %q: want TCP, UDP or SCTP", proto)
	}
}

// supportedFieldPaths are the fieldRef paths kelpie can resolve.
var supportedFieldPaths = map[string]bool{"metadata.name": true, "metadata.namespace": true}

// env validates environment variables and records their references.
func (c *check) env(p string, env []corev1.EnvVar) {
	for i, e := range env {
		ep := indexPath(p, i)
		if e.Name == "" {
			c.errorf(joinPath(ep, "name"), "required")
		} else {
			for _, msg := range cleanMsgs(validation.IsEnvVarName(e.Name)) {
				c.errorf(joinPath(ep, "name"), "invalid variable name %q: %s", e.Name, msg)
			}
		}
		vf := e.ValueFrom
		if vf == nil {
			continue
		}
		if e.Value != "" {
			c.errorf(ep, "value and valueFrom are exclusive")
		}
		vp := joinPath(ep, "valueFrom")
		n := 0
		if fr := vf.FieldRef; fr != nil {
			n++
			if !supportedFieldPaths[fr.FieldPath] {
				c.errorf(joinPath(vp, "fieldRef.fieldPath"), "%q is not supported by kelpie (supported: metadata.name, metadata.namespace)", fr.FieldPath)
			}
		}
		if r := vf.SecretKeyRef; r != nil {
			n++
			c.keyRef(joinPath(vp, "secretKeyRef"), KindSecret, r.Name, r.Key, r.Optional)
		}
		if r := vf.ConfigMapKeyRef; r != nil {
			n++
			c.keyRef(joinPath(vp, "configMapKeyRef"), KindConfigMap, r.Name, r.Key, r.Optional)
		}
		if n != 1 {
			c.errorf(vp, "give exactly one of fieldRef, secretKeyRef or configMapKeyRef")
		}
	}
}

// keyRef validates a secretKeyRef or configMapKeyRef.
func (c *check) keyRef(p, kind, name, key string, optional *bool) {
	if name == "" {
		c.errorf(joinPath(p, "name"), "required")
	}
	if key == "" {
		c.errorf(joinPath(p, "key"), "required")
		key = ""
	}
	c.ref(joinPath(p, "name"), kind, name, key, optional != nil && *optional)
}

// envFrom validates envFrom sources.
func (c *check) envFrom(p string, srcs []corev1.EnvFromSource) {
	for i, s := range srcs {
		sp := indexPath(p, i)
		if s.Prefix != "" {
			for _, msg := range cleanMsgs(validation.IsEnvVarName(s.Prefix)) {
				c.errorf(joinPath(sp, "prefix"), "invalid prefix %q: %s", s.Prefix, msg)
			}
		}
		switch {
		case s.ConfigMapRef != nil && s.SecretRef != nil, s.ConfigMapRef == nil && s.SecretRef == nil:
			c.errorf(sp, "give exactly one of configMapRef or secretRef")
		case s.ConfigMapRef != nil:
			if s.ConfigMapRef.Name == "" {
				c.errorf(joinPath(sp, "configMapRef.name"), "required")
			}
			c.ref(joinPath(sp, "configMapRef.name"), KindConfigMap, s.ConfigMapRef.Name, "", s.ConfigMapRef.Optional != nil && *s.ConfigMapRef.Optional)
		default:
			if s.SecretRef.Name == "" {
				c.errorf(joinPath(sp, "secretRef.name"), "required")
			}
			c.ref(joinPath(sp, "secretRef.name"), KindSecret, s.SecretRef.Name, "", s.SecretRef.Optional != nil && *s.SecretRef.Optional)
		}
	}
}

// mounts validates volume mounts against the pod's volumes.
func (c *check) mounts(p string, mounts []corev1.VolumeMount, volumes map[string]bool) {
	paths := map[string]bool{}
	for i, m := range mounts {
		mp := indexPath(p, i)
		if m.Name == "" {
			c.errorf(joinPath(mp, "name"), "required")
		} else if !volumes[m.Name] {
			c.errorf(joinPath(mp, "name"), "no volume named %q in this pod", m.Name)
		}
		switch {
		case m.MountPath == "":
			c.errorf(joinPath(mp, "mountPath"), "required")
		case !strings.HasPrefix(m.MountPath, "/"):
			c.errorf(joinPath(mp, "mountPath"), "must be an absolute path, got %q", m.MountPath)
		default:
			clean := path.Clean(m.MountPath)
			if paths[clean] {
				c.errorf(joinPath(mp, "mountPath"), "duplicate mount path %q", m.MountPath)
			}
			paths[clean] = true
		}
		c.relativePath(joinPath(mp, "subPath"), m.SubPath, false)
	}
}

// resources validates requests and limits.
func (c *check) resources(p string, requests, limits corev1.ResourceList) {
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"requests", requests}, {"limits", limits}} {
		for _, name := range sortedKeys(part.list) {
			q := part.list[corev1.ResourceName(name)]
			rp := keyPath(joinPath(p, part.name), name)
			if !supportedResources[corev1.ResourceName(name)] {
				c.errorf(rp, "resource %q is not supported by kelpie (supported: cpu, memory, ephemeral-storage)", name)
				continue
			}
			if q.Sign() < 0 {
				c.errorf(rp, "must not be negative, got %s", q.String())
			}
		}
	}
	for _, name := range sortedKeys(requests) {
		req := requests[corev1.ResourceName(name)]
		lim, ok := limits[corev1.ResourceName(name)]
		if ok && req.Cmp(lim) > 0 {
			c.errorf(keyPath(joinPath(p, "requests"), name), "request %s is more than the limit %s", req.String(), lim.String())
		}
	}
}

// probe validates a probe; named ports must exist in the container.
func (c *check) probe(p string, pr *corev1.Probe, portNames map[string]bool, singleSuccess bool) {
	if pr == nil {
		return
	}
	handlers := 0
	if pr.Exec != nil {
		handlers++
		if len(pr.Exec.Command) == 0 {
			c.errorf(joinPath(p, "exec.command"), "required")
		}
	}
	if pr.HTTPGet != nil {
		handlers++
		c.probePort(joinPath(p, "httpGet.port"), pr.HTTPGet.Port, portNames)
		if s := pr.HTTPGet.Scheme; s != corev1.URISchemeHTTP && s != corev1.URISchemeHTTPS {
			c.errorf(joinPath(p, "httpGet.scheme"), "unsupported value %q: want HTTP or HTTPS", s)
		}
	}
	if pr.TCPSocket != nil {
		handlers++
		c.probePort(joinPath(p, "tcpSocket.port"), pr.TCPSocket.Port, portNames)
	}
	if pr.GRPC != nil {
		handlers++
		c.portNumber(joinPath(p, "grpc.port"), pr.GRPC.Port, true)
	}
	if handlers != 1 {
		c.errorf(p, "give exactly one of exec, httpGet, tcpSocket or grpc")
	}
	if g := pr.TerminationGracePeriodSeconds; g != nil {
		switch {
		case !singleSuccess:
			c.errorf(joinPath(p, "terminationGracePeriodSeconds"), "must not be set for readiness probes (they never kill the container)")
		case *g < 1:
			c.errorf(joinPath(p, "terminationGracePeriodSeconds"), "must be 1 or more, got %d", *g)
		}
	}
	for _, f := range []struct {
		name string
		v    int32
	}{{"initialDelaySeconds", pr.InitialDelaySeconds}, {"timeoutSeconds", pr.TimeoutSeconds}, {"periodSeconds", pr.PeriodSeconds}, {"successThreshold", pr.SuccessThreshold}, {"failureThreshold", pr.FailureThreshold}} {
		if f.v < 0 {
			c.errorf(joinPath(p, f.name), "must be 0 or more, got %d", f.v)
		}
	}
	if singleSuccess && pr.SuccessThreshold != 1 {
		c.errorf(joinPath(p, "successThreshold"), "must be 1 for liveness and startup probes")
	}
}

// probePort checks a probe's port: a number in range or a named container port.
func (c *check) probePort(p string, port intstr.IntOrString, portNames map[string]bool) {
	if port.Type == intstr.Int {
		c.portNumber(p, port.IntVal, true)
		return
	}
	if !portNames[port.StrVal] {
		c.errorf(p, "no container port named %q", port.StrVal)
	}
}
