// Package nethost gives the end-to-end tests of cli private kelpie hosts on
// the machine's real containerd, CNI plugins and iptables: a claimed pod
// subnet and bridge, a containerd namespace and state dir of their own, an
// image dir with the test images, and a check from outside kelpie that a
// host runs exactly what it should and leaks nothing (containers, tasks,
// snapshots, leases, netns files, mounts, CNI leases, veths, iptables
// rules, cgroups, shims). It also builds test networks of network
// namespaces joined by a bridge, each a host on which a process runs under
// nsenter.
//
// It is a package of its own, apart from testenv, because it imports
// containerd and kelpie's runtime, whose own tests import testenv.
package nethost

import (
	"context"
	"crypto/sha512"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/snapshots"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/image-spec/identity"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/image"
)

// snapshotter is the containerd snapshotter kelpie's runtime uses.
const snapshotter = image.DefaultSnapshotter

// StateName is a pod's or claim's name in the state dir: "namespace_name".
func StateName(namespace, name string) string { return namespace + "_" + name }

// Pod subnets of the private hosts: 10.248.10.0/24 … 10.248.19.0/24, one
// host each at a time, claimed with a lock file shared by every test
// process on the machine (other sessions run these tests too).
const (
	subnetFirst = 10
	subnetLast  = 19
)

// staleBridge matches the bridges New names: "k", a tag, the
// subnet's third octet.
var staleBridge = regexp.MustCompile(`^k(crp|crt|site|hp|flt)[0-9]+$`)

// New makes a private host for a test that needs hosts of its own,
// several in one process, on the containerd at addr (read it with
// testenv.ContainerdAddress before anything clears KELPIE_*). It claims a
// free pod subnet of 10.248.10.0/24 … 10.248.19.0/24; tag (crp, crt, site, hp
// or flt) and the subnet's third octet N name its bridge ("k" tag N) and,
// with the process id and a random suffix, its containerd namespace; its
// hostPort is 18080+N. Callers put N in their Kubernetes namespaces, since
// the CNI plugins name iptables chains after "namespace_pod". When the test
// ends every pod is removed through Empty, the host is checked empty, what
// kelpie could not remove is reaped, its images and containerd namespace
// are deleted, and the bridge is deleted.
func New(t *testing.T, addr, tag string) *Host {
	t.Helper()
	testenv.Root(t)
	testenv.Binary(t, "iptables", "iptables")
	testenv.Binary(t, "ip", "iproute2")
	pfx, octet, lock := claimSubnet(t, tag)
	t.Cleanup(func() { lock.Close() })
	bridge := fmt.Sprintf("k%s%d", tag, octet)
	ns := fmt.Sprintf("kelpie-%s%d-%d-%04x", tag, octet, os.Getpid(), rand.N(0x10000))

	images := t.TempDir()
	if err := testimage.WriteLayout(images, testimage.Standard()...); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	realState, err := filepath.EvalSymlinks(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	cd, err := containerd.New(addr, containerd.WithDefaultNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	hc := &Host{
		T: t, CD: cd, Namespace: ns, StateDir: realState, Bridge: bridge,
		Subnet:   pfx,
		Octet:    octet,
		Gateway:  pfx.Addr().Next().String(),
		HostPort: 18080 + octet,
		flags: []string{
			"--containerd-address", addr,
			"--containerd-namespace", ns,
			"--state-dir", stateDir,
			"--pod-subnet", pfx.String(),
			"--bridge", bridge,
			"--image-dir", images,
		},
		seen: map[string]bool{},
	}
	t.Logf("host %s: pod subnet %s, bridge %s, containerd namespace %s", tag, pfx, bridge, ns)
	t.Cleanup(func() {
		defer cd.Close()
		if !hc.destroyed {
			hc.Destroy()
		}
		hc.reap()
		hc.removeNamespace()
		if out, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			t.Logf("ip link del %s: %v: %s", bridge, err, out)
		}
		// An agent on this host loaded kelpie's nftables table (its
		// Service data path) into the machine's network namespace and, as
		// it should on a real host, left it when it stopped. Here the
		// machine is the test's: remove it. An agent of another test that
		// still runs loads it again at its next change.
		_ = exec.Command("nft", "delete", "table", "ip", "kelpie").Run()
	})
	return hc
}

// claimSubnet locks a free subnet of the private range for the test and
// returns it, its third octet and the lock, which closing releases (as the
// process's end does). A subnet is free when its lock is and no interface
// but a stale bridge of these tests holds an address in it; such a bridge,
// left by a run that ended without its cleanup, is deleted when it has no
// ports, since a second bridge with the subnet would take the route to the
// pods.
func claimSubnet(t *testing.T, tag string) (netip.Prefix, int, *os.File) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		for octet := subnetFirst; octet <= subnetLast; octet++ {
			pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 248, byte(octet), 0}), 24)
			lock := testenv.TryLock(t, fmt.Sprintf("subnet-10.248.%d.0", octet))
			if lock == nil {
				continue
			}
			if holder := subnetHolder(t, pfx, fmt.Sprintf("k%s%d", tag, octet)); holder != "" {
				t.Logf("pod subnet %s is free of tests but %s holds an address in it; trying the next one", pfx, holder)
				lock.Close()
				continue
			}
			return pfx, octet, lock
		}
		if time.Now().After(deadline) {
			t.Fatalf("no free pod subnet in 10.248.%d.0/24 … 10.248.%d.0/24 for 3 minutes", subnetFirst, subnetLast)
		}
		time.Sleep(time.Second)
	}
}

// subnetHolder returns the interface other than bridge that holds an
// address of subnet, after deleting stale bridges of these tests; "" when
// none does.
func subnetHolder(t *testing.T, subnet netip.Prefix, bridge string) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		holds := false
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && subnet.Contains(p.Addr()) {
				holds = true
			}
		}
		if !holds || ifc.Name == bridge {
			continue
		}
		if staleBridge.MatchString(ifc.Name) && BridgePorts(ifc.Name) == 0 {
			t.Logf("deleting stale bridge %s of an earlier run (it holds %v)", ifc.Name, addrs)
			out, err := exec.Command("ip", "link", "del", ifc.Name).CombinedOutput()
			if err == nil {
				continue
			}
			t.Logf("ip link del %s: %v: %s", ifc.Name, err, out)
		}
		return ifc.Name
	}
	return ""
}

// Want is what a converged host runs.
type Want struct {
	// Pods maps "namespace/name" to the pod.
	Pods map[string]WantPod
	// Networks maps a CNI network other than the default ("kelpie-net-NET")
	// to the pods ("namespace/name") holding a lease on it.
	Networks map[string][]string
	// Bridges maps a bridge other than the host's to its number of ports.
	Bridges map[string]int
}

// WantPod is one pod of a Want.
type WantPod struct {
	Containers []string
	Tmpfs      []string // volumes mounted on the host: Secrets, Memory emptyDirs
	SubPaths   []string // subPath staging binds, "VOLUME/CONTAINER/INDEX" (INDEX: the mount's among the container's)
}

// Host is a private kelpie host of a test, inspected from outside kelpie.
type Host struct {
	T         *testing.T
	CD        *containerd.Client // on the host's containerd namespace
	Namespace string             // containerd's
	StateDir  string             // symlinks resolved
	Bridge    string
	Subnet    netip.Prefix // the pod subnet
	Octet     int          // the third octet of the pod subnet
	Gateway   string       // the bridge's address
	HostPort  int          // a hostPort free for this host: 18080+Octet
	// Empty removes every pod of the host the way kelpie does (`kelpie
	// apply --prune --allow-empty` with Flags); the caller sets it.
	// Destroy runs it, and so does the end of the test unless Destroy ran.
	Empty func() error
	// NetNS, when set, is the network namespace (/run/netns/NetNS) the
	// host's agent runs in, whose bridge and iptables rules are its: the
	// checks look for them there rather than in the machine's namespace.
	NetNS string
	// Mounts are file systems the test mounted under the state dir (paths
	// relative to it, "agent/git"), not kelpie's: the checks pass them over.
	Mounts []string

	flags     []string
	seen      map[string]bool // every pod key a Want named
	destroyed bool
}

// Destroy empties the host through Empty and checks it is left empty.
func (hc *Host) Destroy() {
	t := hc.T
	t.Helper()
	hc.destroyed = true
	if hc.Empty == nil {
		t.Errorf("host %s: no Empty function to remove its pods", hc.Namespace)
	} else if err := hc.Empty(); err != nil {
		t.Errorf("empty apply: %v", err)
	}
	if problems := hc.Settle(Want{}); len(problems) > 0 {
		t.Errorf("after the empty apply the host is not empty:\n- %s", strings.Join(problems, "\n- "))
	}
}

// Flags are the kelpie flags that run on the host: containerd address and
// namespace, state dir, pod subnet, bridge and image dir.
func (hc *Host) Flags() []string { return slices.Clone(hc.flags) }

// SubnetPrefix is the address prefix of the host's pods ("10.248.N.").
func (hc *Host) SubnetPrefix() string { return fmt.Sprintf("10.248.%d.", hc.Octet) }

// ContainerEnv returns the value of the variable name in the OCI spec of
// the container ctr of pod namespace/pod, as containerd holds it: what the
// running container got, read without kelpie.
func (hc *Host) ContainerEnv(namespace, pod, ctr, name string) string {
	hc.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := namespace + "_" + pod + "_" + ctr
	c, err := hc.CD.LoadContainer(ctx, id)
	if err != nil {
		hc.T.Fatalf("load container %s: %v", id, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		hc.T.Fatalf("spec of container %s: %v", id, err)
	}
	for _, kv := range spec.Process.Env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// ImageDigest returns the digest of the image ref in the host's containerd
// namespace, "" when it holds none.
func (hc *Host) ImageDigest(ref string) string {
	hc.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	img, err := hc.CD.GetImage(ctx, ref)
	if err != nil {
		return ""
	}
	return img.Target().Digest.String()
}

// Settle checks the host against want, again and again for a few seconds
// while anything differs (a namespace's veth goes some time after its last
// user, a shim reaps its task), and returns what still differs.
func (hc *Host) Settle(want Want) []string {
	deadline := time.Now().Add(10 * time.Second)
	var last string
	var since time.Time
	for {
		problems := hc.Problems(want)
		if key := strings.Join(problems, "\n"); key != last {
			last, since = key, time.Now()
		}
		// Done when nothing differs, or the same things have differed
		// for 2s (a leak, not a lag), or time is up.
		if len(problems) == 0 || time.Since(since) > 2*time.Second || time.Now().After(deadline) {
			return problems
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Problems lists every way the host differs from want.
func (hc *Host) Problems(want Want) []string {
	for key := range want.Pods {
		hc.seen[key] = true
	}
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	live := map[string]bool{} // "namespace_name" of the desired pods
	var wantContainers []string
	for key, wp := range want.Pods {
		ns, name, _ := strings.Cut(key, "/")
		live[StateName(ns, name)] = true
		for _, c := range wp.Containers {
			wantContainers = append(wantContainers, key+"/"+c)
		}
	}

	// containerd: one container per desired container, each running, each
	// on its own snapshot; no other snapshot than theirs and the images'
	// layers; no lease.
	recs, err := hc.CD.ContainerService().List(ctx)
	if err != nil {
		add("list containers: %v", err)
	}
	byName := map[string][]string{}
	snapKeys := map[string]string{}
	for _, r := range recs {
		k := r.Labels[reconciler.LabelPod] + "/" + r.Labels[reconciler.LabelContainer]
		byName[k] = append(byName[k], r.ID)
		snapKeys[r.SnapshotKey] = r.ID
	}
	if len(recs) != len(wantContainers) {
		add("%d containers in containerd namespace %s, want %d", len(recs), hc.Namespace, len(wantContainers))
	}
	for _, k := range wantContainers {
		if len(byName[k]) == 0 {
			add("container %s is missing", k)
		}
	}
	for k, ids := range byName {
		if len(ids) > 1 {
			add("container %s is there %d times: %v", k, len(ids), ids)
		}
		if !slices.Contains(wantContainers, k) {
			add("container %s (%v) is not desired", k, ids)
		}
	}
	tasks, err := hc.CD.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		add("list tasks: %v", err)
	} else {
		running := map[string]bool{}
		for _, tk := range tasks.Tasks {
			running[tk.ID] = tk.Status == tasktypes.Status_RUNNING
		}
		for _, r := range recs {
			if !running[r.ID] {
				add("container %s has no running task", r.ID)
			}
		}
	}
	chains := map[string]bool{}
	imgs, err := hc.CD.ImageService().List(ctx)
	if err != nil {
		add("list images: %v", err)
	}
	for _, img := range imgs {
		diffIDs, err := containerd.NewImage(hc.CD, img).RootFS(ctx)
		if err != nil {
			add("image %s: %v", img.Name, err)
			continue
		}
		for _, c := range identity.ChainIDs(diffIDs) {
			chains[c.String()] = true
		}
	}
	var snaps []snapshots.Info
	err = hc.CD.SnapshotService(snapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		snaps = append(snaps, info)
		return nil
	})
	if err != nil {
		add("walk snapshots: %v", err)
	}
	haveSnap := map[string]bool{}
	for _, s := range snaps {
		haveSnap[s.Name] = true
		switch {
		case s.Kind == snapshots.KindActive && snapKeys[s.Name] != "":
		case s.Kind == snapshots.KindCommitted && chains[s.Name]:
		default:
			add("orphan snapshot %s (%v, labels %v): no container or image uses it", s.Name, s.Kind, s.Labels)
		}
	}
	for key, id := range snapKeys {
		if !haveSnap[key] {
			add("container %s has no snapshot %s", id, key)
		}
	}
	lss, err := hc.CD.LeasesService().List(ctx)
	if err != nil {
		add("list leases: %v", err)
	}
	for _, l := range lss {
		var held []string
		rs, err := hc.CD.LeasesService().ListResources(ctx, l)
		if err != nil {
			held = append(held, err.Error())
		}
		for _, r := range rs {
			held = append(held, r.Type+" "+r.ID)
		}
		add("containerd lease %s left (created %v, labels %v) holding %d resource(s) %v", l.ID, l.CreatedAt.Format(time.TimeOnly), l.Labels, len(held), held)
	}

	// The state dir: one network namespace, sandbox record and pod dir per
	// pod; one host-local lease per pod and network.
	compareNames := func(what string, have []string, suffix string) {
		want := make([]string, 0, len(live))
		for k := range live {
			want = append(want, k+suffix)
		}
		if extra, missing := diffSets(have, want); len(extra)+len(missing) > 0 {
			add("%s: %v left over, %v missing", what, extra, missing)
		}
	}
	compareNames("netns files", dirNames(filepath.Join(hc.StateDir, "netns")), "")
	compareNames("sandbox records", dirNames(filepath.Join(hc.StateDir, "sandboxes")), ".json")
	compareNames("pod dirs", dirNames(filepath.Join(hc.StateDir, "pods")), "")
	leaseDir := filepath.Join(hc.StateDir, "cni", "networks")
	for _, nw := range dirNames(leaseDir) {
		var owners []string
		for _, f := range dirNames(filepath.Join(leaseDir, nw)) {
			if f == "lock" || strings.HasPrefix(f, "last_reserved_ip") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(leaseDir, nw, f))
			if err != nil {
				add("lease %s/%s: %v", nw, f, err)
				continue
			}
			id, _, _ := strings.Cut(string(b), "\n")
			owners = append(owners, strings.TrimSpace(id))
		}
		var wantOwners []string
		if nw == "kelpie" {
			for k := range live {
				wantOwners = append(wantOwners, k)
			}
		} else {
			wantOwners = stateNames(want.Networks[nw])
		}
		if extra, missing := diffSets(owners, wantOwners); len(extra)+len(missing) > 0 {
			add("host-local leases of network %s: %v left over, %v missing", nw, extra, missing)
		}
	}
	for nw, pods := range want.Networks {
		if len(pods) > 0 && len(dirNames(filepath.Join(leaseDir, nw))) == 0 {
			add("network %s has no leases, want %v", nw, pods)
		}
	}

	// Mounts under the state dir: only the pods' namespaces, tmpfs volumes
	// and subPath binds (of whatever filesystem the volume is on).
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(hc.StateDir))
	if err != nil {
		add("read mounts: %v", err)
	}
	var haveMounts, wantMounts []string
	for _, m := range mounts {
		if m.Mountpoint == hc.StateDir {
			continue // the state dir on a filesystem of its own (a test's small tmpfs)
		}
		rel := strings.TrimPrefix(m.Mountpoint, hc.StateDir+"/")
		if slices.Contains(hc.Mounts, rel) {
			continue
		}
		if strings.Contains(rel, "/volumes/.subpaths/") {
			haveMounts = append(haveMounts, rel+" (bind)")
			continue
		}
		haveMounts = append(haveMounts, rel+" ("+m.FSType+")")
	}
	for key, wp := range want.Pods {
		ns, name, _ := strings.Cut(key, "/")
		wantMounts = append(wantMounts, "netns/"+StateName(ns, name)+" (nsfs)")
		for _, v := range wp.Tmpfs {
			wantMounts = append(wantMounts, "pods/"+StateName(ns, name)+"/volumes/"+v+" (tmpfs)")
		}
		for _, sp := range wp.SubPaths {
			wantMounts = append(wantMounts, "pods/"+StateName(ns, name)+"/volumes/.subpaths/"+sp+" (bind)")
		}
	}
	if extra, missing := diffSets(haveMounts, wantMounts); len(extra)+len(missing) > 0 {
		add("mounts under the state dir: %v left over, %v missing", extra, missing)
	}

	// The host: one veth per pod on the bridge, iptables rules and chains
	// only for live pods, cgroups only for live pods.
	bridges := map[string]int{hc.Bridge: len(want.Pods)}
	for br, n := range want.Bridges {
		bridges[br] = n
	}
	for br, n := range bridges {
		if got := hc.bridgePorts(br); got != n {
			add("bridge %s has %d ports, want %d", br, got, n)
		}
	}
	var wantIDs []string
	for _, k := range wantContainers {
		parts := strings.Split(k, "/") // namespace/pod/container
		wantIDs = append(wantIDs, strings.Join(parts, "_"))
	}
	if extra, missing := diffSets(shimIDs(hc.Namespace), wantIDs); len(extra)+len(missing) > 0 {
		add("containerd shims of namespace %s: %v left over, %v missing", hc.Namespace, extra, missing)
	}
	p = append(p, hc.iptablesProblems(live)...)
	p = append(p, hc.cgroupProblems(live)...)
	sort.Strings(p)
	return p
}

// shim is a containerd shim process.
type shim struct {
	pid int
	id  string // the container it serves
}

// shims lists the shim processes serving containerd namespace ns (one per
// container: kelpie does not group them).
func shims(ns string) []shim {
	var out []shim
	for _, name := range dirNames("/proc") {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", name, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		var shimNS, id string
		for i := 0; i+1 < len(args); i++ {
			switch args[i] {
			case "-namespace":
				shimNS = args[i+1]
			case "-id":
				id = args[i+1]
			}
		}
		if shimNS == ns && id != "" {
			out = append(out, shim{pid: pid, id: id})
		}
	}
	return out
}

// shimIDs lists the containers the shims of namespace ns serve.
func shimIDs(ns string) []string {
	var ids []string
	for _, s := range shims(ns) {
		ids = append(ids, s.id)
	}
	return ids
}

// reap removes what the test left in its containerd namespace and kelpie
// could not: leases, and shims whose container record is gone. containerd
// reaches a shim only through a container of its ID, so one is made for
// the task's deletion and removed again; a shim containerd does not track
// at all (its start was cut short) is killed by its pid, which is this
// test's: the namespace is the test's own.
func (hc *Host) reap() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if lss, err := hc.CD.LeasesService().List(ctx); err == nil {
		for _, l := range lss {
			hc.T.Logf("cleanup: deleting leftover lease %s", l.ID)
			_ = hc.CD.LeasesService().Delete(ctx, l)
		}
	}
	orphans := func() []shim {
		var out []shim
		for _, s := range shims(hc.Namespace) {
			if _, err := hc.CD.LoadContainer(ctx, s.id); err != nil {
				out = append(out, s)
			}
		}
		return out
	}
	for _, s := range orphans() {
		hc.T.Logf("cleanup: deleting the task of orphaned shim %d (%s)", s.pid, s.id)
		c, err := hc.CD.NewContainer(ctx, s.id, containerd.WithNewSpec(oci.WithDefaultSpec()))
		if err != nil {
			hc.T.Logf("cleanup: container %s: %v", s.id, err)
			continue
		}
		_, _ = hc.CD.TaskService().Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: s.id})
		_ = c.Delete(ctx)
	}
	// The shims whose task was deleted exit; wait a little for them.
	deadline := time.Now().Add(5 * time.Second)
	for len(orphans()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	for _, s := range orphans() {
		hc.T.Logf("cleanup: killing shim %d (%s), which containerd does not track", s.pid, s.id)
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
	}
}

// stateNames turns "namespace/name" keys into state dir names.
func stateNames(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		ns, name, _ := strings.Cut(k, "/")
		out = append(out, StateName(ns, name))
	}
	return out
}

// iptablesProblems finds nat rules and chains of pods this host ran that
// are not live: masquerade and hostPort rules name the CNI container ID
// ("namespace_name") in a comment; the plugins' chains are hashes of the
// network name and that ID.
var iptablesID = regexp.MustCompile(`id: \\?"([^"\\]+)\\?"`)

func (hc *Host) iptablesProblems(live map[string]bool) []string {
	out, err := hc.command("iptables", "-w", "-t", "nat", "-S").CombinedOutput()
	if err != nil {
		return []string{fmt.Sprintf("iptables -t nat -S: %v: %s", err, out)}
	}
	namespaces := map[string]bool{}
	ever := map[string]bool{}
	for key := range hc.seen {
		ns, name, _ := strings.Cut(key, "/")
		namespaces[ns] = true
		ever[StateName(ns, name)] = true
	}
	var p []string
	text := string(out)
	for _, l := range strings.Split(text, "\n") {
		m := iptablesID.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ns, _, _ := strings.Cut(m[1], "_")
		if namespaces[ns] && !live[m[1]] {
			p = append(p, "iptables rule of a removed pod: "+l)
		}
	}
	for id := range ever {
		if live[id] {
			continue
		}
		for _, network := range []string{"kelpie", "kelpie-net-sensors"} {
			for _, prefix := range []string{"", "DN-"} {
				chain := cniChain(network, id, prefix)
				if strings.Contains(text, "-N "+chain+"\n") {
					p = append(p, fmt.Sprintf("iptables chain %s of removed pod %s (network %s) left", chain, id, network))
				}
			}
		}
	}
	return p
}

// cniChain is the nat chain the CNI plugins name after a network and a
// container ID (utils.MustFormatChainNameWithPrefix).
func cniChain(network, id, prefix string) string {
	sum := sha512.Sum512([]byte(network + id))
	return fmt.Sprintf("CNI-%s%x", prefix, sum)[:28]
}

// cgroupProblems finds pod cgroups (CGROUP_ROOT/<containerd namespace>/
// namespace_name) of pods that are not live, in every hierarchy.
func (hc *Host) cgroupProblems(live map[string]bool) []string {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return []string{fmt.Sprintf("read cgroup mounts: %v", err)}
	}
	left := map[string][]string{}
	for _, m := range mounts {
		ents, _ := os.ReadDir(filepath.Join(m.Mountpoint, hc.Namespace))
		for _, e := range ents {
			if _, _, ok := strings.Cut(e.Name(), "_"); ok && e.IsDir() && !live[e.Name()] {
				left[e.Name()] = append(left[e.Name()], filepath.Base(m.Mountpoint))
			}
		}
	}
	var p []string
	for d, hier := range left {
		p = append(p, fmt.Sprintf("cgroup of removed pod %s left in %v", d, hier))
	}
	return p
}

// command returns a command that runs in the host's network namespace.
func (hc *Host) command(name string, args ...string) *exec.Cmd {
	if hc.NetNS == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + hc.NetNS, "--", name}, args...)...)
}

// bridgePorts counts the interfaces attached to a bridge of the host's
// network namespace.
func (hc *Host) bridgePorts(bridge string) int {
	return countPorts(hc.command("ip", "-o", "link", "show", "master", bridge))
}

// BridgePorts counts the interfaces attached to a bridge.
func BridgePorts(bridge string) int {
	return countPorts(exec.Command("ip", "-o", "link", "show", "master", bridge))
}

// countPorts counts the lines `ip -o link show master BRIDGE` prints.
func countPorts(cmd *exec.Cmd) int {
	out, err := cmd.Output()
	if err != nil {
		return 0 // no such bridge: no ports
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

// dirNames lists the names in a directory; none when it does not exist.
func dirNames(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// diffSets compares two multisets of strings: what have holds more than
// want, and what it lacks.
func diffSets(have, want []string) (extra, missing []string) {
	count := map[string]int{}
	for _, s := range have {
		count[s]++
	}
	for _, s := range want {
		count[s]--
	}
	for s, n := range count {
		for ; n > 0; n-- {
			extra = append(extra, s)
		}
		for ; n < 0; n++ {
			missing = append(missing, s)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	return extra, missing
}

// removeNamespace removes the host's images and then its containerd
// namespace, once nothing else of kelpie's is left in it: the images'
// content and snapshots would otherwise stay behind on the test machine.
func (hc *Host) removeNamespace() {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), hc.Namespace), 60*time.Second)
	defer cancel()
	is := hc.CD.ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		hc.T.Logf("cleanup: list images of %s: %v", hc.Namespace, err)
		return
	}
	for _, img := range imgs {
		if err := is.Delete(ctx, img.Name, images.SynchronousDelete()); err != nil {
			hc.T.Logf("cleanup: delete image %s of %s: %v", img.Name, hc.Namespace, err)
		}
	}
	if err := hc.CD.NamespaceService().Delete(ctx, hc.Namespace); err != nil {
		hc.T.Logf("cleanup: delete containerd namespace %s: %v", hc.Namespace, err)
	}
}
