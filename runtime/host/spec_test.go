package host

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/reconciler"
)

func ptr[T any](v T) *T { return &v }

func TestSpecFromPod(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("limits", "")
	p.Volumes = []reconciler.Volume{{Name: "data", Source: reconciler.EmptyDir{}}}
	p.Containers[0] = reconciler.Container{
		Name: "app", Image: testimage.BusyboxRef,
		Args:       []string{"sleep", "1000"}, // replaces the image's cmd (sh)
		Env:        []reconciler.EnvVar{{Name: "FOO", Value: "bar"}},
		WorkingDir: "/data",
		Mounts: []reconciler.Mount{
			{Volume: "data", Path: "/data"},
			{Volume: "data", Path: "/sub", SubPath: "sub/dir", ReadOnly: true},
		},
		Resources: reconciler.Resources{MemoryLimit: 64 << 20, CPUMilli: 500, CPURequestMilli: 250},
		Security: reconciler.Security{
			RunAsUser: ptr[int64](1000), RunAsGroup: ptr[int64](2000), SupplementalGroups: []int64{3000},
			ReadOnlyRootFilesystem: true, AllowPrivilegeEscalation: ptr(false),
			CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"},
		},
	}
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	cont := tr.load(t, p.Namespace, p.Name, "app")
	s, err := cont.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Linux.Resources
	if r.Memory == nil || r.Memory.Limit == nil || *r.Memory.Limit != 64<<20 {
		t.Errorf("memory limit = %+v, want %d", r.Memory, 64<<20)
	}
	if r.CPU == nil || r.CPU.Quota == nil || *r.CPU.Quota != 50_000 || r.CPU.Period == nil || *r.CPU.Period != 100_000 ||
		r.CPU.Shares == nil || *r.CPU.Shares != 256 {
		t.Errorf("cpu = %+v, want quota 50000 per 100000, shares 256", r.CPU)
	}
	u := s.Process.User
	if u.UID != 1000 || u.GID != 2000 || !slices.Contains(u.AdditionalGids, 3000) {
		t.Errorf("user = %+v", u)
	}
	if !s.Root.Readonly || !s.Process.NoNewPrivileges {
		t.Errorf("readonly rootfs %v, no_new_privs %v", s.Root.Readonly, s.Process.NoNewPrivileges)
	}
	if caps := s.Process.Capabilities.Bounding; !reflect.DeepEqual(caps, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("capabilities = %v", caps)
	}
	if !reflect.DeepEqual(s.Process.Args, []string{"sleep", "1000"}) || s.Process.Cwd != "/data" {
		t.Errorf("args %v in %s", s.Process.Args, s.Process.Cwd)
	}
	if !slices.Contains(s.Process.Env, "FOO=bar") || !slices.Contains(s.Process.Env, "HOSTNAME=limits") {
		t.Errorf("env = %v", s.Process.Env)
	}
	sbs, _ := tr.net.Sandboxes()
	netns := ""
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			netns = ns.Path
		}
	}
	if want := sbs[testNS+"/limits"].NetNSPath; netns == "" || netns != want {
		t.Errorf("network namespace %q, want the sandbox's %q", netns, want)
	}
	if want := "/" + tr.ns + "/" + testNS + "_limits/" + cont.ID(); s.Linux.CgroupsPath != want {
		t.Errorf("cgroup %q, want %q", s.Linux.CgroupsPath, want)
	}
	mounts := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = m
	}
	for _, dst := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/data", "/sub"} {
		if mounts[dst].Type != "bind" {
			t.Errorf("no bind mount at %s: %+v", dst, mounts[dst])
		}
	}
	if m := mounts["/sub"]; m.Source != filepath.Join(tr.vols.PodDir(p.Namespace, p.Name), ".subpaths/data/app/1") || !slices.Contains(m.Options, "ro") {
		t.Errorf("subPath mount = %+v", m)
	}

	// And the container runs so.
	if out, _, _ := tr.execIn(t, cont, "id", "-u"); strings.TrimSpace(out) != "1000" {
		t.Errorf("id -u = %q", out)
	}
	if out, _, _ := tr.execIn(t, cont, "id", "-G"); !strings.Contains(out, "3000") {
		t.Errorf("id -G = %q", out)
	}
	if _, _, code := tr.execIn(t, cont, "touch", "/rootfs-file"); code == 0 {
		t.Error("wrote to a read-only root filesystem")
	}
	if _, errOut, code := tr.execIn(t, cont, "touch", "/data/file"); code != 0 {
		t.Errorf("cannot write the emptyDir: %s", errOut)
	}
	checked := false
	for _, f := range []string{"/sys/fs/cgroup/memory" + s.Linux.CgroupsPath + "/memory.limit_in_bytes", "/sys/fs/cgroup" + s.Linux.CgroupsPath + "/memory.max"} {
		if b, err := os.ReadFile(f); err == nil {
			checked = true
			if got := strings.TrimSpace(string(b)); got != strconv.Itoa(64<<20) {
				t.Errorf("%s = %s, want %d", f, got, 64<<20)
			}
		}
	}
	if !checked {
		t.Logf("no memory cgroup file found for %s; the limit was checked in the spec only", s.Linux.CgroupsPath)
	}
}

func TestSpecRefusals(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	for _, tc := range []struct {
		name string
		edit func(*reconciler.Container)
		want string
	}{
		{"run as root", func(c *reconciler.Container) { c.Security.RunAsNonRoot = true }, "runAsNonRoot"},
		{"unknown capability", func(c *reconciler.Container) { c.Security.CapAdd = []string{"FLY"} }, `unknown capability "FLY"`},
		{"subPath escape", func(c *reconciler.Container) {
			c.Mounts = []reconciler.Mount{{Volume: "data", Path: "/data", SubPath: "../../etc"}}
		}, "must be a relative path inside the volume"},
		{"unknown volume", func(c *reconciler.Container) { c.Mounts = []reconciler.Mount{{Volume: "nope", Path: "/x"}} }, "no such volume"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := busyboxPod("refused-"+strings.ReplaceAll(tc.name, " ", "-"), "sleep 1000")
			p.HostNetwork = true
			p.Volumes = []reconciler.Volume{{Name: "data", Source: reconciler.EmptyDir{}}}
			tc.edit(&p.Containers[0])
			err := tr.CreatePod(ctx, p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CreatePod = %v, want an error containing %q", err, tc.want)
			}
			if recs, _ := tr.podContainers(ctx, p.Namespace, p.Name); len(recs) != 0 {
				t.Errorf("a refused container was created")
			}
		})
	}
}

func TestContainerArgs(t *testing.T) {
	ep, cmd := []string{"/entry"}, []string{"default", "args"}
	for _, tc := range []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"image", nil, nil, []string{"/entry", "default", "args"}},
		{"args replace cmd", nil, []string{"x"}, []string{"/entry", "x"}},
		{"command replaces both", []string{"/bin/sh"}, nil, []string{"/bin/sh"}},
		{"command and args", []string{"/bin/sh", "-c"}, []string{"echo"}, []string{"/bin/sh", "-c", "echo"}},
	} {
		if got := containerArgs(ep, cmd, tc.command, tc.args); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestContainerMountsOrder(t *testing.T) {
	ctr := &reconciler.Container{Mounts: []reconciler.Mount{
		{Volume: "b", Path: "/data/inner"},
		{Volume: "a", Path: "/data"},
		{Volume: "c", Path: "/etc/hosts"}, // replaces the pod's /etc/hosts
	}}
	res := podResources{
		volumes: map[string]string{"a": "/v/a", "b": "/v/b", "c": "/v/c"},
		etc:     etcFiles{hosts: "/p/hosts", hostname: "/p/hostname", resolvConf: "/p/resolv"},
	}
	ms, err := containerMounts(ctr, res)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Destination+"="+m.Source)
	}
	want := []string{"/data=/v/a", "/data/inner=/v/b", "/etc/hosts=/v/c", "/etc/hostname=/p/hostname", "/etc/resolv.conf=/p/resolv"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mounts %v, want %v", got, want)
	}
}

func TestContainerMountsProjectedReadOnly(t *testing.T) {
	ctr := &reconciler.Container{Mounts: []reconciler.Mount{
		{Volume: "conf", Path: "/conf"}, // a manifest's readOnly: false
		{Volume: "data", Path: "/data"},
		{Volume: "data", Path: "/ro", ReadOnly: true},
	}}
	res := podResources{volumes: map[string]string{"conf": "/v/conf", "data": "/v/data"}, fixed: map[string]bool{"conf": true}}
	ms, err := containerMounts(ctr, res)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/conf": "ro", "/data": "rw", "/ro": "ro"}
	for _, m := range ms {
		if mode := want[m.Destination]; !slices.Contains(m.Options, mode) {
			t.Errorf("mount %s: options %v, want %s", m.Destination, m.Options, mode)
		}
	}
}

func TestCPUConversions(t *testing.T) {
	for milli, want := range map[int64]int64{1: 1000, 500: 50_000, 1000: 100_000, 2500: 250_000} {
		if got := cpuQuota(milli); got != want {
			t.Errorf("cpuQuota(%d) = %d, want %d", milli, got, want)
		}
	}
	for milli, want := range map[int64]uint64{1: 2, 250: 256, 1000: 1024} {
		if got := cpuShares(milli); got != want {
			t.Errorf("cpuShares(%d) = %d, want %d", milli, got, want)
		}
	}
}
