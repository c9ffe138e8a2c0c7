package specs

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/internal/suggest"
)

// capabilityNames are the Linux capabilities (capability.h, 0 to 40),
// without their CAP_ prefix, in kernel order.
var capabilityNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
	"SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
	"NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
	"SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
	"AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// CapabilityAll is the capability name that stands for every capability.
const CapabilityAll = "ALL"

// DefaultCapabilities are the capabilities every container gets unless it
// drops them (containerd's and Docker's default set). Adding one of them
// asks for nothing more; adding any other, or ALL, is a PrivilegeNeed.
var DefaultCapabilities = map[string]bool{
	"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true,
	"FSETID": true, "KILL": true, "MKNOD": true, "NET_BIND_SERVICE": true,
	"NET_RAW": true, "SETFCAP": true, "SETGID": true, "SETPCAP": true,
	"SETUID": true, "SYS_CHROOT": true,
}

// NormalizeCapability returns the canonical form of a capability name as
// manifests and flags may write it ("net_admin", "CAP_NET_ADMIN" and
// "NET_ADMIN" are all "NET_ADMIN"; "all" is "ALL"), and whether it is a
// known capability or ALL.
func NormalizeCapability(name string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(name))
	if u == CapabilityAll {
		return u, true
	}
	u = strings.TrimPrefix(u, "CAP_")
	for _, known := range capabilityNames {
		if u == known {
			return u, true
		}
	}
	return u, false
}

// PrivilegeKind says what a PrivilegeNeed asks of the host.
type PrivilegeKind string

// What a pod may ask that weakens its isolation from the host. Whether a
// host grants it is the host's decision (agent and apply flags), not the
// manifest's.
const (
	// NeedPrivileged is a privileged container: every capability, every
	// device, no seccomp filter.
	NeedPrivileged PrivilegeKind = "privileged"
	// NeedCapability is an added capability outside DefaultCapabilities,
	// or ALL.
	NeedCapability PrivilegeKind = "capability"
	// NeedHostNetwork, NeedHostPID and NeedHostIPC share one of the host's
	// namespaces.
	NeedHostNetwork PrivilegeKind = "hostNetwork"
	NeedHostPID     PrivilegeKind = "hostPID"
	NeedHostIPC     PrivilegeKind = "hostIPC"
	// NeedSeccompUnconfined runs containers without a seccomp filter
	// (seccompProfile type Unconfined).
	NeedSeccompUnconfined PrivilegeKind = "seccompUnconfined"
)

// PrivilegeNeed is one thing a pod spec asks that weakens its isolation,
// with the field that asks for it.
type PrivilegeNeed struct {
	Kind PrivilegeKind `json:"kind"`
	// Field is the field path that asks, relative to the pod spec
	// ("containers[0].securityContext.capabilities.add[1]"); prefix it with
	// PodSpecPath for a path in the manifest.
	Field string `json:"field"`
	// Container names the container that asks; empty for the pod's own
	// fields (host namespaces, the pod's seccompProfile).
	Container string `json:"container,omitempty"`
	// Capability is the canonical capability name (NET_ADMIN, ALL) of a
	// NeedCapability.
	Capability string `json:"capability,omitempty"`
}

// String describes the need: "containers[0].securityContext.capabilities.add[0]: capability SYS_ADMIN".
func (n PrivilegeNeed) String() string {
	what := string(n.Kind)
	switch n.Kind {
	case NeedPrivileged:
		what = "privileged container"
	case NeedCapability:
		what = "capability " + n.Capability
	case NeedHostNetwork, NeedHostPID, NeedHostIPC:
		what = "the host's " + strings.TrimPrefix(string(n.Kind), "host") + " namespace"
	case NeedSeccompUnconfined:
		what = "no seccomp filter (Unconfined)"
	}
	return n.Field + ": " + what
}

// PrivilegeNeeds lists, in field order, what spec asks that weakens the
// pod's isolation from its host: host namespaces, privileged containers,
// capabilities beyond DefaultCapabilities, and Unconfined seccomp. A host
// refuses the pod unless it grants every need; an empty list asks nothing.
// Unknown capability names (refused by validation) count as needs.
func PrivilegeNeeds(spec *corev1.PodSpec) []PrivilegeNeed {
	var needs []PrivilegeNeed
	for _, ns := range []struct {
		on   bool
		kind PrivilegeKind
	}{{spec.HostNetwork, NeedHostNetwork}, {spec.HostPID, NeedHostPID}, {spec.HostIPC, NeedHostIPC}} {
		if ns.on {
			needs = append(needs, PrivilegeNeed{Kind: ns.kind, Field: string(ns.kind)})
		}
	}
	podUnconfined := false
	if sc := spec.SecurityContext; sc != nil && sc.SeccompProfile != nil {
		podUnconfined = sc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined
	}
	inherits := false // some container runs with the pod's seccomp profile
	for _, list := range []struct {
		field string
		cs    []corev1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}} {
		for i := range list.cs {
			c := &list.cs[i]
			p := indexPath(list.field, i)
			sc := c.SecurityContext
			if sc == nil || sc.SeccompProfile == nil {
				inherits = true
			}
			if sc == nil {
				continue
			}
			if sc.Privileged != nil && *sc.Privileged {
				needs = append(needs, PrivilegeNeed{Kind: NeedPrivileged, Field: p + ".securityContext.privileged", Container: c.Name})
			}
			if caps := sc.Capabilities; caps != nil {
				for j, name := range caps.Add {
					canon, _ := NormalizeCapability(string(name))
					if DefaultCapabilities[canon] {
						continue
					}
					needs = append(needs, PrivilegeNeed{Kind: NeedCapability, Field: indexPath(p+".securityContext.capabilities.add", j), Container: c.Name, Capability: canon})
				}
			}
			if sp := sc.SeccompProfile; sp != nil && sp.Type == corev1.SeccompProfileTypeUnconfined {
				needs = append(needs, PrivilegeNeed{Kind: NeedSeccompUnconfined, Field: p + ".securityContext.seccompProfile.type", Container: c.Name})
			}
		}
	}
	if podUnconfined && inherits {
		needs = append(needs, PrivilegeNeed{Kind: NeedSeccompUnconfined, Field: "securityContext.seccompProfile.type"})
	}
	return needs
}

// PodSpecPath is the field path of the pod spec in a workload of kind:
// "spec" for a Pod, "spec.template.spec" for a Deployment, DaemonSet,
// StatefulSet or Job, "spec.jobTemplate.spec.template.spec" for a CronJob; "" for other
// kinds.
func PodSpecPath(kind string) string {
	switch kind {
	case KindPod:
		return "spec"
	case KindDeployment, KindDaemonSet, KindStatefulSet, KindJob:
		return "spec.template.spec"
	case KindCronJob:
		return "spec.jobTemplate.spec.template.spec"
	}
	return ""
}

// capabilities validates the capability names of a security context.
func (c *check) capabilities(p string, caps *corev1.Capabilities) {
	if caps == nil {
		return
	}
	for _, part := range []struct {
		name string
		list []corev1.Capability
	}{{"add", caps.Add}, {"drop", caps.Drop}} {
		for i, name := range part.list {
			if _, ok := NormalizeCapability(string(name)); ok {
				continue
			}
			msg := fmt.Sprintf("unknown capability %q", name)
			if s := suggestCapability(string(name)); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			c.errorf(indexPath(joinPath(p, part.name), i), "%s", msg)
		}
	}
}

// seccomp validates a seccompProfile.
func (c *check) seccomp(p string, sp *corev1.SeccompProfile) {
	if sp == nil {
		return
	}
	switch sp.Type {
	case corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined:
	case corev1.SeccompProfileTypeLocalhost:
		c.errorf(joinPath(p, "type"), "Localhost profiles are not supported by kelpie (supported: RuntimeDefault, Unconfined)")
	case "":
		c.errorf(joinPath(p, "type"), "required: RuntimeDefault or Unconfined")
	default:
		c.errorf(joinPath(p, "type"), "unsupported value %q: want RuntimeDefault or Unconfined", sp.Type)
	}
}

// suggestCapability returns the known capability closest to a misspelt
// name, or "".
func suggestCapability(name string) string {
	u := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "CAP_")
	return suggest.Closest(u, append([]string{CapabilityAll}, capabilityNames...))
}
