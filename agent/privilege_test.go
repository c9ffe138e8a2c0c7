package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// adminDeployment is a Deployment of one container adding SYS_ADMIN.
func adminDeployment() string {
	return testenv.Deployment{Name: "admin", Namespace: "agenttest", Replicas: 1, Container: testenv.Container{
		Extra: "          securityContext:\n            capabilities: {add: [SYS_ADMIN]}\n",
	}}.YAML()
}

// TestPrivilegesRefusedInPlan: on a host that does not allow a capability
// the pod asking for it is never created; status says which field and
// which flag, while the other pods of the commit run.
func TestPrivilegesRefusedInPlan(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"admin.yaml": adminDeployment(), "web.yaml": deployment("web", 1, "busybox")})
	h.start()
	s := h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	if got, want := h.podNames(), []string{"agenttest/web-0"}; !slices.Equal(got, want) {
		t.Fatalf("pods: %v, want %v", got, want)
	}
	want := "pod agenttest/admin-0: refused: this host does not allow spec.template.spec.containers[0].securityContext.capabilities.add[0]: capability SYS_ADMIN (--allow-capability SYS_ADMIN or --allow-privileged)"
	if len(s.Waiting) != 1 || s.Waiting[0] != want {
		t.Fatalf("waiting %q, want [%q]", s.Waiting, want)
	}
	for _, c := range h.rt.Calls() {
		if strings.Contains(c.Subject, "admin-0") {
			t.Errorf("runtime call for the refused pod: %v", c)
		}
	}
}

// TestPrivilegesAllowed: the runtime flags' allow-list reaches the plan.
func TestPrivilegesAllowed(t *testing.T) {
	h := newHarness(t)
	h.cfg.Runtime.AllowCapabilities = []string{"SYS_ADMIN"}
	v1 := h.src.push("v1", map[string]string{"admin.yaml": adminDeployment()})
	h.start()
	s := h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	if got, want := h.podNames(), []string{"agenttest/admin-0"}; !slices.Equal(got, want) || len(s.Waiting) != 0 {
		t.Fatalf("pods %v (want %v), waiting %q", got, want, s.Waiting)
	}
}
