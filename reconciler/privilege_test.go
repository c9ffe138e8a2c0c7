package reconciler

import (
	"slices"
	"testing"
)

// TestExpandPrivileges checks a pod carries what its template asks of the
// host, with manifest field paths, and each container its seccomp choice.
func TestExpandPrivileges(t *testing.T) {
	state := loadText(t, deployment("web", 2, `          securityContext:
            capabilities: {add: [NET_BIND_SERVICE, SYS_ADMIN]}
            seccompProfile: {type: Unconfined}
        - name: side
          image: busybox:1.36
      hostNetwork: true
`)+"---\n"+deployment("plain", 1, ""))
	d, _ := Expand(state, Host{Name: "n1"})
	want := []string{
		"spec.template.spec.hostNetwork: the host's Network namespace",
		"spec.template.spec.containers[0].securityContext.capabilities.add[1]: capability SYS_ADMIN",
		"spec.template.spec.containers[0].securityContext.seccompProfile.type: no seccomp filter (Unconfined)",
	}
	for _, p := range d.Pods {
		var got []string
		for _, n := range p.Privileges {
			got = append(got, n.String())
		}
		switch p.Owner.Name {
		case "web":
			if !slices.Equal(got, want) {
				t.Errorf("%s: privileges %q, want %q", p.Name, got, want)
			}
			if !p.Containers[0].Security.SeccompUnconfined || p.Containers[1].Security.SeccompUnconfined {
				t.Errorf("%s: seccomp unconfined %v %v, want true false", p.Name, p.Containers[0].Security.SeccompUnconfined, p.Containers[1].Security.SeccompUnconfined)
			}
		case "plain":
			if len(got) != 0 || p.Containers[0].Security.SeccompUnconfined {
				t.Errorf("%s: privileges %q unconfined %v, want none", p.Name, got, p.Containers[0].Security.SeccompUnconfined)
			}
		}
	}
	if len(d.Pods) != 3 {
		t.Errorf("pods %q", podNames(d.Pods))
	}
}
