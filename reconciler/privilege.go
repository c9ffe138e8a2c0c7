package reconciler

import (
	"fmt"
	"strings"

	"github.com/kelpie-dev/kelpie/specs"
)

// HostPrivileges is what a host lets its pods ask for beyond the default
// isolation: by default nothing (no privileged containers, no capabilities
// beyond containerd's default set, no host namespaces, always a seccomp
// filter).
type HostPrivileges struct {
	// Privileged allows everything (--allow-privileged): privileged
	// containers, every capability, host namespaces, Unconfined seccomp.
	Privileged bool
	// Capabilities lists the capabilities beyond the default set that
	// containers may add (--allow-capability, canonical names without
	// CAP_); "ALL" is never implied by a list.
	Capabilities []string
	// HostNetwork allows pods in the host's network namespace
	// (--allow-host-network).
	HostNetwork bool
}

// NewHostPrivileges checks the capability names of an allow-list and
// returns them canonical.
func NewHostPrivileges(privileged, hostNetwork bool, capabilities []string) (HostPrivileges, error) {
	h := HostPrivileges{Privileged: privileged, HostNetwork: hostNetwork}
	for _, c := range capabilities {
		name, ok := specs.NormalizeCapability(c)
		if !ok {
			return HostPrivileges{}, fmt.Errorf("--allow-capability %q: not a Linux capability", c)
		}
		if name == specs.CapabilityAll {
			return HostPrivileges{}, fmt.Errorf("--allow-capability ALL: use --allow-privileged to allow every capability")
		}
		h.Capabilities = append(h.Capabilities, name)
	}
	return h, nil
}

// allows reports whether the host grants need n.
func (h HostPrivileges) allows(n specs.PrivilegeNeed) bool {
	if h.Privileged {
		return true
	}
	switch n.Kind {
	case specs.NeedCapability:
		for _, c := range h.Capabilities {
			if c == n.Capability {
				return true
			}
		}
	case specs.NeedHostNetwork:
		return h.HostNetwork
	}
	return false
}

// Refused lists what pod p asks that the host does not grant: its
// Privileges, and whatever its resolved fields ask that Privileges does
// not list (a Pod built by hand, not by Expand), so that the runtime never
// grants more than it checked.
func (h HostPrivileges) Refused(p *Pod) []specs.PrivilegeNeed {
	var out []specs.PrivilegeNeed
	for _, n := range podNeeds(p) {
		if !h.allows(n) {
			out = append(out, n)
		}
	}
	return out
}

// podNeeds returns p.Privileges, then the needs of p's resolved fields
// (host network, privileged containers, added capabilities outside the
// default set, Unconfined seccomp) that p.Privileges does not cover.
// Unknown capability names are left to the runtime, which refuses them.
func podNeeds(p *Pod) []specs.PrivilegeNeed {
	needs := p.Privileges
	covered := func(n specs.PrivilegeNeed) bool {
		for _, m := range p.Privileges {
			if m.Kind == n.Kind && m.Capability == n.Capability && (m.Container == n.Container || m.Container == "") {
				return true
			}
		}
		return false
	}
	add := func(n specs.PrivilegeNeed) {
		if !covered(n) {
			needs = append(needs, n)
		}
	}
	if p.HostNetwork {
		add(specs.PrivilegeNeed{Kind: specs.NeedHostNetwork, Field: "hostNetwork"})
	}
	for _, list := range []struct {
		field string
		cs    []Container
	}{{"initContainers", p.InitContainers}, {"containers", p.Containers}} {
		for i := range list.cs {
			c := &list.cs[i]
			sc := fmt.Sprintf("%s[%d].securityContext", list.field, i)
			if c.Security.Privileged {
				add(specs.PrivilegeNeed{Kind: specs.NeedPrivileged, Field: sc + ".privileged", Container: c.Name})
			}
			for j, name := range c.Security.CapAdd {
				canon, known := specs.NormalizeCapability(name)
				if !known || specs.DefaultCapabilities[canon] {
					continue
				}
				add(specs.PrivilegeNeed{Kind: specs.NeedCapability, Field: fmt.Sprintf("%s.capabilities.add[%d]", sc, j), Container: c.Name, Capability: canon})
			}
			if c.Security.SeccompUnconfined {
				add(specs.PrivilegeNeed{Kind: specs.NeedSeccompUnconfined, Field: sc + ".seccompProfile.type", Container: c.Name})
			}
		}
	}
	return needs
}

// PrivilegeError is the refusal of a pod that asks for more than its host
// grants; it names every field that asks and the flag that would allow it.
type PrivilegeError struct {
	Pod     string
	Refused []specs.PrivilegeNeed
}

// Error lists the refused needs.
func (e *PrivilegeError) Error() string {
	return fmt.Sprintf("pod %s %s", e.Pod, e.Reason())
}

// Reason is the refusal without the pod's name: "refused: this host does
// not allow FIELD: WHAT (FLAG); …".
func (e *PrivilegeError) Reason() string {
	parts := make([]string, len(e.Refused))
	for i, n := range e.Refused {
		parts[i] = n.String() + " (" + flagFor(n) + ")"
	}
	return "refused: this host does not allow " + strings.Join(parts, "; ")
}

// flagFor names the agent flag that allows need n.
func flagFor(n specs.PrivilegeNeed) string {
	switch n.Kind {
	case specs.NeedCapability:
		if n.Capability != specs.CapabilityAll {
			return "--allow-capability " + n.Capability + " or --allow-privileged"
		}
	case specs.NeedHostNetwork:
		return "--allow-host-network or --allow-privileged"
	}
	return "--allow-privileged"
}

// CheckPrivileges returns a *PrivilegeError when p asks for more than h
// grants, else nil.
func (h HostPrivileges) CheckPrivileges(p *Pod) error {
	if r := h.Refused(p); len(r) > 0 {
		return &PrivilegeError{Pod: p.Namespace + "/" + p.Name, Refused: r}
	}
	return nil
}
