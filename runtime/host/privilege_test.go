package host

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// capSysAdmin is CAP_SYS_ADMIN's bit in /proc/PID/status's CapEff.
const capSysAdmin = 21

// procStatus returns the fields of /proc/1/status of a pod's running
// container: its main process's capabilities and seccomp mode.
func (tr *testRuntime) procStatus(t *testing.T, ns, pod, container string) map[string]string {
	t.Helper()
	out, errOut, code := tr.execIn(t, tr.load(t, ns, pod, container), "cat", "/proc/1/status")
	if code != 0 {
		t.Fatalf("cat /proc/1/status in %s: exit %d: %s", container, code, errOut)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// hasCap reports whether a CapEff value (hex) holds capability bit.
func hasCap(t *testing.T, capEff string, bit uint) bool {
	t.Helper()
	v, err := strconv.ParseUint(capEff, 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q: %v", capEff, err)
	}
	return v&(1<<bit) != 0
}

// TestCreatePodRefusesPrivileges checks that a default host refuses a pod
// that adds a capability outside the default set, or asks for the host's
// network, naming the field and the flag, before anything of the pod
// exists.
func TestCreatePodRefusesPrivileges(t *testing.T) {
	tr := newTestRuntime(t, func(c *Config) { c.AllowHostNetwork = false })
	ctx := tr.ctx(t)
	admin := busyboxPod("admin", "sleep 1000")
	admin.Containers[0].Security.CapAdd = []string{"CHOWN", "SYS_ADMIN"}
	hostNet := busyboxPod("hostnet", "sleep 1000")
	hostNet.HostNetwork = true
	for _, tc := range []struct {
		pod  reconciler.Pod
		want string
	}{
		{admin, "this host does not allow containers[0].securityContext.capabilities.add[1]: capability SYS_ADMIN (--allow-capability SYS_ADMIN or --allow-privileged)"},
		{hostNet, "this host does not allow hostNetwork: the host's Network namespace (--allow-host-network or --allow-privileged)"},
	} {
		t.Run(tc.pod.Name, func(t *testing.T) {
			err := tr.CreatePod(ctx, tc.pod)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CreatePod = %v, want an error containing %q", err, tc.want)
			}
			var perr *reconciler.PrivilegeError
			if !errors.As(err, &perr) || !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("CreatePod = %v, want a *reconciler.PrivilegeError and errdefs.ErrFailedPrecondition", err)
			}
			if recs, _ := tr.podContainers(ctx, tc.pod.Namespace, tc.pod.Name); len(recs) != 0 {
				t.Error("a refused container was created")
			}
			if _, err := os.Stat(tr.podDir(tc.pod.Namespace, tc.pod.Name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pod dir of a refused pod: %v", err)
			}
		})
	}
}

// TestAllowCapability checks that an allow-listed capability is granted
// (the container's CapEff has it) and that every container runs under
// containerd's default seccomp filter while still able to use it.
func TestAllowCapability(t *testing.T) {
	tr := newTestRuntime(t, func(c *Config) { c.AllowCapabilities = []string{"cap_sys_admin"} })
	ctx := tr.ctx(t)
	p := busyboxPod("capable", "exec sleep 1000")
	p.HostNetwork = true
	p.Containers = append(p.Containers, p.Containers[0])
	p.Containers[1].Name = "admin"
	p.Containers[1].Security.CapAdd = []string{"SYS_ADMIN"}
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod with SYS_ADMIN allow-listed: %v", err)
	}
	plain := tr.procStatus(t, p.Namespace, p.Name, "main")
	admin := tr.procStatus(t, p.Namespace, p.Name, "admin")
	if hasCap(t, plain["CapEff"], capSysAdmin) {
		t.Errorf("container main has CAP_SYS_ADMIN (CapEff %s) without asking", plain["CapEff"])
	}
	if !hasCap(t, admin["CapEff"], capSysAdmin) {
		t.Errorf("container admin lacks CAP_SYS_ADMIN: CapEff %s", admin["CapEff"])
	}
	for name, st := range map[string]map[string]string{"main": plain, "admin": admin} {
		if st["Seccomp"] != "2" {
			t.Errorf("container %s: Seccomp %q, want 2 (filter)", name, st["Seccomp"])
		}
	}
	// The default profile lets a container with CAP_SYS_ADMIN use what it
	// grants (mount), and refuses it to one without.
	if _, errOut, code := tr.execIn(t, tr.load(t, p.Namespace, p.Name, "admin"), "sh", "-c", "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t"); code != 0 {
		t.Errorf("mount in the SYS_ADMIN container: exit %d: %s", code, errOut)
	}
	if _, _, code := tr.execIn(t, tr.load(t, p.Namespace, p.Name, "main"), "sh", "-c", "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t"); code == 0 {
		t.Error("mount succeeded in a container without CAP_SYS_ADMIN")
	}
}

// TestSeccompUnconfined checks that privileged and Unconfined containers
// run without a seccomp filter on a host that allows them.
func TestSeccompUnconfined(t *testing.T) {
	tr := newTestRuntime(t, func(c *Config) { c.AllowPrivileged = true })
	ctx := tr.ctx(t)
	p := busyboxPod("unconfined", "exec sleep 1000")
	p.HostNetwork = true
	p.Containers = append(p.Containers, p.Containers[0], p.Containers[0])
	p.Containers[1].Name = "privileged"
	p.Containers[1].Security.Privileged = true
	p.Containers[2].Name = "unconfined"
	p.Containers[2].Security.SeccompUnconfined = true
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	for name, want := range map[string]string{"main": "2", "privileged": "0", "unconfined": "0"} {
		if got := tr.procStatus(t, p.Namespace, p.Name, name)["Seccomp"]; got != want {
			t.Errorf("container %s: Seccomp %q, want %s", name, got, want)
		}
	}

	// Unconfined needs --allow-privileged: an allow-list does not grant it.
	strict := newTestRuntime(t, func(c *Config) { c.AllowCapabilities = []string{"NET_ADMIN"} })
	q := busyboxPod("unconfined", "exec sleep 1000")
	q.HostNetwork = true
	q.Containers[0].Security.SeccompUnconfined = true
	want := "containers[0].securityContext.seccompProfile.type: no seccomp filter (Unconfined) (--allow-privileged)"
	if err := strict.CreatePod(strict.ctx(t), q); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CreatePod = %v, want an error containing %q", err, want)
	}
}

// TestPodDirModes checks that only root can enter the state dir's pods
// and claims dirs, a pod's directory and its logs, whatever the modes of
// the volumes inside (a Secret with defaultMode 0644 included).
func TestPodDirModes(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	// An earlier kelpie left a pod dir open to everyone.
	p := busyboxPod("modes", "exec sleep 1000")
	p.HostNetwork = true
	old := tr.podDir(p.Namespace, p.Name)
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(old, 0o755); err != nil {
		t.Fatal(err)
	}
	p.Volumes = []reconciler.Volume{
		{Name: "scratch", Source: reconciler.EmptyDir{}},
		{Name: "token", Source: reconciler.Projected{Secret: true, Files: []reconciler.File{{Path: "token", Data: []byte("s3cret"), Mode: 0o644}}}},
	}
	p.Containers[0].Mounts = []reconciler.Mount{{Volume: "scratch", Path: "/scratch"}, {Volume: "token", Path: "/token"}}
	p.Containers[0].Security.RunAsUser = new(int64(1000))
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	dir := tr.podDir(p.Namespace, p.Name)
	for _, d := range []string{
		filepath.Join(tr.cfg.StateDir, statedir.Pods),
		filepath.Join(tr.cfg.StateDir, statedir.Claims),
		dir,
		filepath.Join(dir, podLogsDir),
	} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o700 || st.Uid != 0 {
			t.Errorf("%s: mode %v owner %d, want 0700 root", d, fi.Mode().Perm(), st.Uid)
		}
	}
	// The container, not root, still uses its volumes.
	cont := tr.load(t, p.Namespace, p.Name, "main")
	if out, errOut, code := tr.execIn(t, cont, "sh", "-c", "id -u && cat /token/token && echo x > /scratch/f && cat /scratch/f"); code != 0 || out != "1000\ns3cretx\n" {
		t.Errorf("non-root container using its volumes: exit %d, out %q, err %q", code, out, errOut)
	}
}
