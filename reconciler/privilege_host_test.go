package reconciler

import (
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/specs"
)

func TestHostPrivileges(t *testing.T) {
	capAdmin := specs.PrivilegeNeed{Kind: specs.NeedCapability, Field: "containers[0].securityContext.capabilities.add[0]", Container: "c", Capability: "SYS_ADMIN"}
	capNet := specs.PrivilegeNeed{Kind: specs.NeedCapability, Field: "containers[0].securityContext.capabilities.add[1]", Container: "c", Capability: "NET_ADMIN"}
	capAll := specs.PrivilegeNeed{Kind: specs.NeedCapability, Field: "containers[0].securityContext.capabilities.add[0]", Container: "c", Capability: "ALL"}
	hostNet := specs.PrivilegeNeed{Kind: specs.NeedHostNetwork, Field: "hostNetwork"}
	priv := specs.PrivilegeNeed{Kind: specs.NeedPrivileged, Field: "containers[0].securityContext.privileged", Container: "c"}
	unconfined := specs.PrivilegeNeed{Kind: specs.NeedSeccompUnconfined, Field: "securityContext.seccompProfile.type"}
	netOnly, err := NewHostPrivileges(false, false, []string{"cap_net_admin"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		host    HostPrivileges
		needs   []specs.PrivilegeNeed
		refused int
		msg     string
	}{
		{"nothing asked", HostPrivileges{}, nil, 0, ""},
		{"capability on a default host", HostPrivileges{}, []specs.PrivilegeNeed{capAdmin}, 1, "capability SYS_ADMIN (--allow-capability SYS_ADMIN or --allow-privileged)"},
		{"ALL on a default host", HostPrivileges{}, []specs.PrivilegeNeed{capAll}, 1, "capability ALL (--allow-privileged)"},
		{"allow-listed capability", netOnly, []specs.PrivilegeNeed{capNet}, 0, ""},
		{"allow-list does not cover others", netOnly, []specs.PrivilegeNeed{capNet, capAdmin}, 1, "SYS_ADMIN"},
		{"allow-list does not cover ALL", netOnly, []specs.PrivilegeNeed{capAll}, 1, "ALL"},
		{"host network refused", HostPrivileges{}, []specs.PrivilegeNeed{hostNet}, 1, "--allow-host-network"},
		{"host network allowed", HostPrivileges{HostNetwork: true}, []specs.PrivilegeNeed{hostNet}, 0, ""},
		{"unconfined refused", HostPrivileges{HostNetwork: true}, []specs.PrivilegeNeed{unconfined}, 1, "Unconfined"},
		{"privileged host allows all", HostPrivileges{Privileged: true}, []specs.PrivilegeNeed{capAll, capAdmin, hostNet, priv, unconfined}, 0, ""},
		{"privileged refused", netOnly, []specs.PrivilegeNeed{priv}, 1, "privileged container"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &Pod{Namespace: "default", Name: "p", Privileges: c.needs}
			if got := c.host.Refused(p); len(got) != c.refused {
				t.Fatalf("refused %v, want %d", got, c.refused)
			}
			err := c.host.CheckPrivileges(p)
			if (err != nil) != (c.refused > 0) {
				t.Fatalf("CheckPrivileges = %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q lacks %q", err, c.msg)
			}
		})
	}
	if _, err := NewHostPrivileges(false, false, []string{"CAP_NOPE"}); err == nil {
		t.Error("an unknown capability in the allow-list was accepted")
	}
	if _, err := NewHostPrivileges(false, false, []string{"all"}); err == nil {
		t.Error("ALL in the allow-list was accepted")
	}
}

// TestHostPrivilegesResolvedFields checks that a pod whose Privileges
// list is empty (built by hand, not by Expand) is still refused for what
// its resolved fields ask.
func TestHostPrivilegesResolvedFields(t *testing.T) {
	p := tpod("hand", "sha256:1", RestartAlways, "init:setup", "main")
	p.HostNetwork = true
	p.InitContainers[0].Security.Privileged = true
	p.Containers[0].Security.CapAdd = []string{"CHOWN", "cap_sys_admin", "FLY"}
	p.Containers[0].Security.SeccompUnconfined = true
	got := HostPrivileges{}.Refused(&p)
	var fields []string
	for _, n := range got {
		fields = append(fields, n.String())
	}
	want := []string{
		"hostNetwork: the host's Network namespace",
		"initContainers[0].securityContext.privileged: privileged container",
		"containers[0].securityContext.capabilities.add[1]: capability SYS_ADMIN",
		"containers[0].securityContext.seccompProfile.type: no seccomp filter (Unconfined)",
	}
	if strings.Join(fields, "\n") != strings.Join(want, "\n") {
		t.Errorf("refused:\n%s\nwant:\n%s", strings.Join(fields, "\n"), strings.Join(want, "\n"))
	}
	// Needs listed by Expand are not repeated from the resolved fields.
	p.Privileges = []specs.PrivilegeNeed{
		{Kind: specs.NeedHostNetwork, Field: "spec.hostNetwork"},
		{Kind: specs.NeedCapability, Field: "spec.containers[0].securityContext.capabilities.add[1]", Container: "main", Capability: "SYS_ADMIN"},
		{Kind: specs.NeedSeccompUnconfined, Field: "spec.securityContext.seccompProfile.type"},
	}
	if got := (HostPrivileges{}).Refused(&p); len(got) != 4 || got[3].Kind != specs.NeedPrivileged {
		t.Errorf("refused %v, want the three listed needs and the privileged init container", got)
	}
}

// TestPlanRefusesPrivileges checks that with PlanOptions.Privileges a pod
// asking for more than the host grants gets a wait naming the field and
// the flag, not an action, while other pods are planned as usual.
func TestPlanRefusesPrivileges(t *testing.T) {
	text := deployment("admin", 2, "          securityContext:\n            capabilities: {add: [SYS_ADMIN]}\n") +
		"---\n" + deployment("plain", 1, "")
	desired, _ := expandText(t, text)
	running0 := running(*findPod(t, desired, "default/admin-0"))
	for _, c := range []struct {
		name   string
		priv   *HostPrivileges
		actual []ActualPod
		want   string
	}{
		{"no check", nil, nil, "" +
			"+ create pod default/admin-0 (not running)\n" +
			"+ create pod default/admin-1 (not running)\n" +
			"+ create pod default/plain-0 (not running)\n"},
		{"default host", &HostPrivileges{}, nil, "" +
			"+ create pod default/plain-0 (not running)\n" +
			"wait pod default/admin-0: refused: this host does not allow spec.template.spec.containers[0].securityContext.capabilities.add[0]: capability SYS_ADMIN (--allow-capability SYS_ADMIN or --allow-privileged)\n" +
			"wait pod default/admin-1: refused: this host does not allow spec.template.spec.containers[0].securityContext.capabilities.add[0]: capability SYS_ADMIN (--allow-capability SYS_ADMIN or --allow-privileged)\n"},
		{"running pod is left alone, not pruned", &HostPrivileges{}, []ActualPod{withContainer(running0, ActualContainer{Name: "main", State: Exited, ExitCode: 1, FinishedAt: now.Add(-time.Hour)})}, "" +
			"+ create pod default/plain-0 (not running)\n" +
			"wait pod default/admin-0: refused: this host does not allow spec.template.spec.containers[0].securityContext.capabilities.add[0]: capability SYS_ADMIN (--allow-capability SYS_ADMIN or --allow-privileged)\n" +
			"wait pod default/admin-1: refused: this host does not allow spec.template.spec.containers[0].securityContext.capabilities.add[0]: capability SYS_ADMIN (--allow-capability SYS_ADMIN or --allow-privileged)\n"},
		{"allow-listed", &HostPrivileges{Capabilities: []string{"SYS_ADMIN"}}, nil, "" +
			"+ create pod default/admin-0 (not running)\n" +
			"+ create pod default/admin-1 (not running)\n" +
			"+ create pod default/plain-0 (not running)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Plan(desired, Actual{Pods: c.actual}, PlanOptions{Now: now, Prune: true, RollingUpdates: true, Privileges: c.priv})
			if err != nil {
				t.Fatal(err)
			}
			if got := planText(res); got != c.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}
