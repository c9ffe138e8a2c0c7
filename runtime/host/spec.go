package host

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/pkg/cap"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/runtime/network"
	"github.com/kelpie-dev/kelpie/runtime/volume"
)

// CPU quota period of a container's CFS limit: the kernel's default.
const cfsPeriod = 100_000 // µs

// podResources is what a pod's containers are built on: its sandbox, its
// volumes' host paths, its /etc files and its cgroup parent.
type podResources struct {
	sandbox network.Sandbox
	volumes map[string]string // volume name → host path
	fixed   map[string]bool   // volumes whose content kelpie projects: read-only, and a subPath is never created in them
	// subPath mounts a container's subPath of a volume where runc can bind
	// it safely (volume.Manager.MountSubPath) and returns that path.
	subPath func(sp volume.SubPath) (string, error)
	etc     etcFiles
	cgroup  string // cgroup parent; each container's cgroup is below it
}

// specOpts returns the OCI spec options of container ctr of pod p, run
// from image img on res. It decides nothing the pod does not say, and it
// never puts a Secret's value in an error.
func (c *Containerd) specOpts(ctx context.Context, p *reconciler.Pod, ctr *reconciler.Container, id string, img image.Image, res podResources) ([]oci.SpecOpts, error) {
	cfg, err := img.Containerd().Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %s: read config: %w", img.Ref, image.ConvertErr(err))
	}
	args := containerArgs(cfg.Config.Entrypoint, cfg.Config.Cmd, ctr.Command, ctr.Args)
	if len(args) == 0 {
		return nil, fmt.Errorf("no command: image %s has no entrypoint or cmd, and the manifest gives none: %w", img.Ref, errdefs.ErrInvalidArgument)
	}
	// CreatePod checked this already; the spec is where privileges are
	// granted, so it checks again.
	if err := c.priv.CheckPrivileges(p); err != nil {
		return nil, errdefs.Classify(errdefs.ErrFailedPrecondition, err)
	}
	sec := ctr.Security
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img.Containerd()),
		oci.WithProcessArgs(args...),
		oci.WithEnv(containerEnv(podHostname(p), ctr.Env)),
	}
	if ctr.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(ctr.WorkingDir))
	}

	// Namespaces: the pod's network namespace, or the host's.
	if p.HostNetwork {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostNamespace(specs.UTSNamespace))
	} else {
		if res.sandbox.NetNSPath == "" {
			return nil, fmt.Errorf("pod sandbox has no network namespace: %w", errdefs.ErrFailedPrecondition)
		}
		opts = append(opts,
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: res.sandbox.NetNSPath}),
			oci.WithHostname(podHostname(p)))
	}

	mounts, err := containerMounts(ctr, res)
	if err != nil {
		return nil, err
	}
	opts = append(opts, withMountsReplacing(mounts))

	// User and groups.
	switch u, g := sec.RunAsUser, sec.RunAsGroup; {
	case u != nil && g != nil:
		opts = append(opts, oci.WithUIDGID(uint32(*u), uint32(*g)))
	case u != nil:
		opts = append(opts, oci.WithUserID(uint32(*u)))
	case g != nil:
		opts = append(opts, withGID(uint32(*g)))
	}
	if len(sec.SupplementalGroups) > 0 {
		opts = append(opts, withSupplementalGroups(sec.SupplementalGroups))
	}
	if sec.RunAsNonRoot {
		opts = append(opts, withNonRoot)
	}

	// Privileges.
	if sec.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if sec.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	}
	if sec.AllowPrivilegeEscalation != nil {
		if *sec.AllowPrivilegeEscalation {
			opts = append(opts, oci.WithNewPrivileges)
		} else {
			opts = append(opts, oci.WithNoNewPrivileges)
		}
	}
	capOpts, err := capabilityOpts(sec.CapAdd, sec.CapDrop)
	if err != nil {
		return nil, err
	}
	opts = append(opts, capOpts...)
	// containerd's default seccomp profile (RuntimeDefault), after the
	// capabilities it depends on, unless the container is privileged or
	// the manifest asks for Unconfined (both checked above).
	if !sec.Privileged && !sec.SeccompUnconfined {
		opts = append(opts, seccomp.WithDefaultProfile())
	}

	// Resources.
	r := ctr.Resources
	if r.MemoryLimit < 0 || r.CPUMilli < 0 || r.CPURequestMilli < 0 {
		return nil, fmt.Errorf("negative resource limit: %w", errdefs.ErrInvalidArgument)
	}
	if r.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(r.MemoryLimit)))
	}
	if r.CPUMilli > 0 {
		opts = append(opts, oci.WithCPUCFS(cpuQuota(r.CPUMilli), cfsPeriod))
	}
	if r.CPURequestMilli > 0 {
		opts = append(opts, oci.WithCPUShares(cpuShares(r.CPURequestMilli)))
	}
	opts = append(opts, oci.WithCgroup(path.Join(res.cgroup, id)))
	return opts, nil
}

// containerArgs is the command line of a container, as Kubernetes builds
// it: a manifest command replaces the image's entrypoint and cmd, manifest
// args replace the image's cmd only.
func containerArgs(entrypoint, cmd, command, args []string) []string {
	switch {
	case len(command) > 0:
		return append(slices.Clone(command), args...)
	case len(args) > 0:
		return append(slices.Clone(entrypoint), args...)
	default:
		return append(slices.Clone(entrypoint), cmd...)
	}
}

// containerEnv is the environment a container adds to its image's:
// HOSTNAME, as the kubelet sets it, then the resolved variables, which
// win.
func containerEnv(hostname string, env []reconciler.EnvVar) []string {
	out := make([]string, 0, len(env)+1)
	out = append(out, "HOSTNAME="+hostname)
	for _, e := range env {
		out = append(out, e.Name+"="+e.Value)
	}
	return out
}

// cpuQuota converts a CPU limit in thousandths of a CPU to a CFS quota per
// cfsPeriod, at least the kernel's minimum of 1 ms.
func cpuQuota(milli int64) int64 {
	return max(milli*cfsPeriod/1000, 1000)
}

// cpuShares converts a CPU request to cgroup v1 shares (1024 per CPU), at
// least the kernel's minimum of 2, as the kubelet does.
func cpuShares(milli int64) uint64 {
	return uint64(max(milli*1024/1000, 2))
}

// containerMounts returns the bind mounts of a container: its volume
// mounts, then the pod's /etc files at the paths no volume mount takes, in
// an order where a parent directory is mounted before what is inside it.
// Projected volumes are read-only, as the kubelet mounts them, whatever the
// mount asks. A subPath is bound by kelpie first (res.subPath), so that
// runc binds a path no container can change.
func containerMounts(ctr *reconciler.Container, res podResources) ([]specs.Mount, error) {
	var mounts []specs.Mount
	taken := map[string]bool{}
	for i, m := range ctr.Mounts {
		if !path.IsAbs(m.Path) {
			return nil, fmt.Errorf("mount of volume %s: path %q is not absolute: %w", m.Volume, m.Path, errdefs.ErrInvalidArgument)
		}
		dst := path.Clean(m.Path)
		if taken[dst] {
			return nil, fmt.Errorf("mount of volume %s: %s is mounted twice: %w", m.Volume, dst, errdefs.ErrInvalidArgument)
		}
		taken[dst] = true
		src, ok := res.volumes[m.Volume]
		if !ok {
			return nil, fmt.Errorf("mount of volume %s: the pod has no such volume: %w", m.Volume, errdefs.ErrInvalidArgument)
		}
		if m.SubPath != "" {
			if res.subPath == nil {
				return nil, fmt.Errorf("mount of volume %s: subPath %q: no subPath mounter: %w", m.Volume, m.SubPath, errdefs.ErrFailedPrecondition)
			}
			sub, err := res.subPath(volume.SubPath{Volume: m.Volume, Root: src, Container: ctr.Name, Index: i, Path: m.SubPath, Create: !res.fixed[m.Volume]})
			if err != nil {
				return nil, fmt.Errorf("mount of volume %s: %w", m.Volume, err)
			}
			src = sub
		}
		mounts = append(mounts, bindMount(src, dst, m.ReadOnly || res.fixed[m.Volume]))
	}
	ro := ctr.Security.ReadOnlyRootFilesystem
	for _, f := range []struct{ src, dst string }{
		{res.etc.hosts, "/etc/hosts"},
		{res.etc.hostname, "/etc/hostname"},
		{res.etc.resolvConf, "/etc/resolv.conf"},
	} {
		if f.src != "" && !taken[f.dst] {
			mounts = append(mounts, bindMount(f.src, f.dst, ro))
		}
	}
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(mounts[i].Destination, "/") < strings.Count(mounts[j].Destination, "/")
	})
	return mounts, nil
}

// bindMount is a recursive, private bind mount.
func bindMount(src, dst string, readOnly bool) specs.Mount {
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", mode}}
}

// withMountsReplacing adds mounts, replacing any default mount (say
// /dev/shm) at the same destination.
func withMountsReplacing(mounts []specs.Mount) oci.SpecOpts {
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		dsts := make([]string, len(mounts))
		for i, m := range mounts {
			dsts[i] = m.Destination
		}
		if err := oci.WithoutMounts(dsts...)(ctx, client, c, s); err != nil {
			return err
		}
		return oci.WithMounts(mounts)(ctx, client, c, s)
	}
}

// withGID sets the primary group, keeping the image's user.
func withGID(gid uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.User.GID = gid
		return nil
	}
}

// withSupplementalGroups adds groups to the process's additional groups.
func withSupplementalGroups(groups []int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		for _, g := range groups {
			if !slices.Contains(s.Process.User.AdditionalGids, uint32(g)) {
				s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
			}
		}
		return nil
	}
}

// errRunAsRoot is returned for a runAsNonRoot container whose user is root.
var errRunAsRoot = errors.New("runAsNonRoot is set but the container would run as uid 0 (set runAsUser)")

// withNonRoot refuses a spec whose process runs as uid 0. It must come
// after every option that sets the user.
func withNonRoot(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process == nil || s.Process.User.UID == 0 {
		return errRunAsRoot
	}
	return nil
}

// capabilityOpts turns capability names as a manifest writes them
// ("NET_ADMIN", "ALL") into spec options: drops first, then adds, as
// Kubernetes applies them.
func capabilityOpts(add, drop []string) ([]oci.SpecOpts, error) {
	known := cap.Known()
	norm := func(names []string) (all bool, caps []string, err error) {
		for _, n := range names {
			u := strings.ToUpper(strings.TrimSpace(n))
			if u == "ALL" {
				all = true
				continue
			}
			if !strings.HasPrefix(u, "CAP_") {
				u = "CAP_" + u
			}
			if len(known) > 0 && !slices.Contains(known, u) {
				return false, nil, fmt.Errorf("unknown capability %q: %w", n, errdefs.ErrInvalidArgument)
			}
			caps = append(caps, u)
		}
		return all, caps, nil
	}
	dropAll, dropCaps, err := norm(drop)
	if err != nil {
		return nil, err
	}
	addAll, addCaps, err := norm(add)
	if err != nil {
		return nil, err
	}
	var opts []oci.SpecOpts
	switch {
	case dropAll:
		opts = append(opts, oci.WithCapabilities(nil))
	case len(dropCaps) > 0:
		opts = append(opts, oci.WithDroppedCapabilities(dropCaps))
	}
	switch {
	case addAll:
		opts = append(opts, oci.WithAllKnownCapabilities)
	case len(addCaps) > 0:
		opts = append(opts, oci.WithAddedCapabilities(addCaps))
	}
	return opts, nil
}
