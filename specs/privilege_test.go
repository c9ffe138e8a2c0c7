package specs

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// podWith returns a Pod manifest whose spec is the indented text spec.
func podWith(spec string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" + spec
}

// TestPrivilegeNeeds lists what loaded pod specs ask of their host.
func TestPrivilegeNeeds(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec string
		want []string
	}{
		{"nothing", `  containers: [{name: c, image: busybox}]
`, nil},
		{"default capabilities and drops ask nothing", `  containers:
  - name: c
    image: busybox
    securityContext:
      capabilities: {add: [NET_BIND_SERVICE, chown, CAP_KILL, NET_RAW], drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}
      privileged: false
`, nil},
		{"capabilities", `  containers:
  - name: c
    image: busybox
    securityContext:
      capabilities: {add: [NET_BIND_SERVICE, all, cap_sys_admin, NET_ADMIN, BPF, SYS_MODULE, SYS_PTRACE, PERFMON, DAC_READ_SEARCH]}
`, []string{
			"containers[0].securityContext.capabilities.add[1]: capability ALL",
			"containers[0].securityContext.capabilities.add[2]: capability SYS_ADMIN",
			"containers[0].securityContext.capabilities.add[3]: capability NET_ADMIN",
			"containers[0].securityContext.capabilities.add[4]: capability BPF",
			"containers[0].securityContext.capabilities.add[5]: capability SYS_MODULE",
			"containers[0].securityContext.capabilities.add[6]: capability SYS_PTRACE",
			"containers[0].securityContext.capabilities.add[7]: capability PERFMON",
			"containers[0].securityContext.capabilities.add[8]: capability DAC_READ_SEARCH",
		}},
		{"host network, privileged init container", `  hostNetwork: true
  initContainers:
  - name: init
    image: busybox
    securityContext: {privileged: true}
  containers: [{name: c, image: busybox}]
`, []string{
			"hostNetwork: the host's Network namespace",
			"initContainers[0].securityContext.privileged: privileged container",
		}},
		{"pod seccomp Unconfined, inherited", `  securityContext:
    seccompProfile: {type: Unconfined}
  containers:
  - name: a
    image: busybox
  - name: b
    image: busybox
    securityContext: {seccompProfile: {type: RuntimeDefault}}
`, []string{"securityContext.seccompProfile.type: no seccomp filter (Unconfined)"}},
		{"pod seccomp Unconfined, overridden everywhere", `  securityContext:
    seccompProfile: {type: Unconfined}
  containers:
  - name: b
    image: busybox
    securityContext: {seccompProfile: {type: RuntimeDefault}}
`, nil},
		{"container seccomp Unconfined", `  securityContext:
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: a
    image: busybox
  - name: b
    image: busybox
    securityContext: {seccompProfile: {type: Unconfined}}
`, []string{"containers[1].securityContext.seccompProfile.type: no seccomp filter (Unconfined)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := reviewMustLoad(t, podWith(tc.spec))
			pod := s.Objects[0].Obj.(*corev1.Pod)
			var got []string
			for _, n := range PrivilegeNeeds(&pod.Spec) {
				got = append(got, n.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("needs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestPrivilegeNeedsFields checks the structured form and the host
// namespaces the decoder refuses today (a spec built in Go can still ask).
func TestPrivilegeNeedsFields(t *testing.T) {
	spec := &corev1.PodSpec{
		HostPID: true, HostIPC: true,
		Containers: []corev1.Container{{Name: "c", SecurityContext: &corev1.SecurityContext{
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_TIME", "NO_SUCH_CAP"}},
		}}},
	}
	want := []PrivilegeNeed{
		{Kind: NeedHostPID, Field: "hostPID"},
		{Kind: NeedHostIPC, Field: "hostIPC"},
		{Kind: NeedCapability, Field: "containers[0].securityContext.capabilities.add[0]", Container: "c", Capability: "SYS_TIME"},
		{Kind: NeedCapability, Field: "containers[0].securityContext.capabilities.add[1]", Container: "c", Capability: "NO_SUCH_CAP"},
	}
	if got := PrivilegeNeeds(spec); !slices.Equal(got, want) {
		t.Errorf("needs %+v\nwant %+v", got, want)
	}
	for kind, want := range map[string]string{
		KindPod: "spec", KindDeployment: "spec.template.spec", KindDaemonSet: "spec.template.spec",
		KindJob: "spec.template.spec", KindCronJob: "spec.jobTemplate.spec.template.spec", KindService: "",
	} {
		if got := PodSpecPath(kind); got != want {
			t.Errorf("PodSpecPath(%s) = %q, want %q", kind, got, want)
		}
	}
}

// TestSecurityValidation checks capability names and seccomp profiles are
// validated with their positions.
func TestSecurityValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec string
		want string
	}{
		{"known names in any spelling", `  containers:
  - name: c
    image: busybox
    securityContext:
      capabilities: {add: [net_admin, CAP_SYS_TIME, All, checkpoint_restore], drop: [ALL, Kill]}
`, ""},
		{"unknown capabilities", `  containers:
  - name: c
    image: busybox
    securityContext:
      capabilities:
        add: [SYS_ADMN, NET_ADMIN]
        drop: [EVERYTHING]
`, `f.yaml:10:15: spec.containers[0].securityContext.capabilities.add[0]: unknown capability "SYS_ADMN" (did you mean "SYS_ADMIN"?)
f.yaml:11:16: spec.containers[0].securityContext.capabilities.drop[0]: unknown capability "EVERYTHING"`},
		{"seccomp Localhost", `  securityContext:
    seccompProfile: {type: Localhost}
  containers:
  - name: c
    image: busybox
    securityContext:
      seccompProfile: {type: Localhost}
`, `f.yaml:6:28: spec.securityContext.seccompProfile.type: Localhost profiles are not supported by kelpie (supported: RuntimeDefault, Unconfined)
f.yaml:11:30: spec.containers[0].securityContext.seccompProfile.type: Localhost profiles are not supported by kelpie (supported: RuntimeDefault, Unconfined)`},
		{"seccomp without type", `  containers:
  - name: c
    image: busybox
    securityContext:
      seccompProfile: {}
`, `f.yaml:9:23: spec.containers[0].securityContext.seccompProfile.type: required: RuntimeDefault or Unconfined`},
		{"seccomp unknown type", `  containers:
  - name: c
    image: busybox
    securityContext:
      seccompProfile: {type: Strict}
`, `f.yaml:9:30: spec.containers[0].securityContext.seccompProfile.type: unsupported value "Strict": want RuntimeDefault or Unconfined`},
		{"host namespaces beyond the network", `  hostPID: true
  hostIPC: true
  containers: [{name: c, image: busybox}]
`, `f.yaml:5:3: spec.hostPID: not supported by kelpie
f.yaml:6:3: spec.hostIPC: not supported by kelpie`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reviewLoad(t, podWith(tc.spec))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded; want %s", tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Fatalf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}
