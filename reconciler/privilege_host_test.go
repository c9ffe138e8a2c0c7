package reconciler

import (
	"strings"
	"testing"

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
