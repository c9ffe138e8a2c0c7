package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/snapshots"
	"github.com/moby/sys/mountinfo"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
	"github.com/kelpie-dev/kelpie/runtime/volume"
	"github.com/kelpie-dev/kelpie/workload"
)

// Names of the files in a pod's directory.
const (
	podMarkerFile = "pod.json" // written first: the pod is found on disk even before it has a container
	podLogsDir    = "logs"     // <container>.log, the stdout and stderr of every task of the container
)

// podDirMode is the mode of the pods dir (StateDir/pods), of each pod's
// directory and of its logs: only root may enter them, whatever the modes
// of the volumes, Secret files and logs inside. Containers never walk
// these paths: runc bind-mounts their volumes as root.
const podDirMode = 0o700

// leaseExpiry bounds how long a lease kelpie takes while creating a
// container outlives a crash; RemovePod deletes it sooner.
const leaseExpiry = time.Hour

// podMarker is what a pod's directory records about it, for Observe and
// RemovePod when the pod has no container left.
type podMarker struct {
	Pod         string   `json:"pod"` // namespace/name
	Hash        string   `json:"hash"`
	HostNetwork bool     `json:"hostNetwork,omitempty"`
	Networks    []string `json:"networks,omitempty"`
	GraceSec    int64    `json:"gracePeriodSeconds"`
}

// containerIDOf returns the containerd ID of a pod's container:
// "<namespace>_<pod>_<container>". Kubernetes names never contain "_", so
// two containers never share an ID, and the ID is the same on every retry.
// An ID containerd would refuse (longer than 76 bytes, or with runs of
// separators) becomes a readable prefix and a hash of the three names.
func containerIDOf(namespace, pod, container string) string {
	return boundedName(namespace+"_"+pod+"_"+container, 76, func(s string) bool { return identifiers.Validate(s) == nil })
}

// boundedName returns name when ok accepts it and it fits in limit bytes;
// otherwise a sanitised prefix of it, "_", and 16 hex digits of its hash.
func boundedName(name string, limit int, ok func(string) bool) string {
	if len(name) <= limit && ok(name) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := hex.EncodeToString(sum[:8])
	var b strings.Builder
	sep := true // no separator at the start
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
			sep = false
		case !sep:
			if r == '_' || r == '.' {
				b.WriteRune(r)
			} else {
				b.WriteByte('-')
			}
			sep = true
		}
	}
	prefix := b.String()
	if n := limit - len(suffix) - 1; len(prefix) > n {
		prefix = prefix[:n]
	}
	prefix = strings.TrimRight(prefix, "_.-")
	if prefix == "" {
		return "k" + suffix
	}
	return prefix + "_" + suffix
}

// podDir is the directory of a pod under the state dir,
// StateDir/pods/NS_NAME, which it shares with the pod's volumes.
func (c *Containerd) podDir(namespace, name string) string {
	return filepath.Join(c.podsDir, statedir.Key(namespace, name))
}

// logPath is the log file of a pod's container.
func (c *Containerd) logPath(namespace, pod, container string) string {
	return filepath.Join(c.podDir(namespace, pod), podLogsDir, container+".log")
}

// podCgroup is the cgroup parent of a pod's containers, e.g.
// "/kelpie/default_web-0" in the containerd namespace kelpie.
func (c *Containerd) podCgroup(namespace, name string) string {
	return "/" + c.cfg.Namespace + "/" + statedir.Key(namespace, name)
}

// labelFilter returns a containerd filter matching objects whose labels
// have the given values (all of them).
func labelFilter(kv ...string) string {
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, fmt.Sprintf("labels.%s==%s", strconv.Quote(kv[i]), strconv.Quote(kv[i+1])))
	}
	return strings.Join(parts, ",")
}

// managedFilter matches everything kelpie labelled.
var managedFilter = labelFilter(reconciler.LabelManaged, reconciler.ManagedValue)

// podFilter matches the objects of one pod.
func podFilter(namespace, name string) string {
	return labelFilter(reconciler.LabelManaged, reconciler.ManagedValue, reconciler.LabelPod, reconciler.JoinName(namespace, name))
}

// podContainers lists the containers of a pod that carry kelpie's labels,
// by container name.
func (c *Containerd) podContainers(ctx context.Context, namespace, name string) (map[string]containers.Container, error) {
	recs, err := c.cd.ContainerService().List(ctx, podFilter(namespace, name))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", image.ConvertErr(err))
	}
	out := make(map[string]containers.Container, len(recs))
	for _, r := range recs {
		if n := r.Labels[reconciler.LabelContainer]; n != "" {
			out[n] = r
		}
	}
	return out, nil
}

// containerLabels are the labels of a pod's container.
func containerLabels(p *reconciler.Pod, name string, init bool) map[string]string {
	l := map[string]string{
		reconciler.LabelManaged:     reconciler.ManagedValue,
		reconciler.LabelPod:         reconciler.JoinName(p.Namespace, p.Name),
		reconciler.LabelSpecHash:    p.Hash,
		reconciler.LabelOwner:       p.Owner.String(),
		reconciler.LabelContainer:   name,
		reconciler.LabelRestarts:    "0",
		reconciler.LabelGracePeriod: strconv.FormatInt(int64(p.TerminationGracePeriod/time.Second), 10),
	}
	if init {
		l[reconciler.LabelInit] = reconciler.InitValue
	}
	if len(p.Networks) > 0 {
		l[reconciler.LabelPodNetworks] = strings.Join(p.Networks, ",")
	}
	if p.HostNetwork {
		l[labelHostNetwork] = reconciler.ManagedValue
	}
	return l
}

// ownedBy reports whether a container record is the named container of the
// pod in kelpie's labels.
func ownedBy(labels map[string]string, key, name string) bool {
	return labels[reconciler.LabelManaged] == reconciler.ManagedValue &&
		labels[reconciler.LabelPod] == key && labels[reconciler.LabelContainer] == name
}

// checkPod rejects a pod the runtime must not create, before anything is
// created: one that asks for more than the host grants (a
// *reconciler.PrivilegeError that also matches
// errdefs.ErrFailedPrecondition), duplicate or unusable container names, a
// missing spec hash.
func (c *Containerd) checkPod(p *reconciler.Pod) error {
	if err := statedir.CheckPod(p.Namespace, p.Name); err != nil {
		return err
	}
	if err := c.priv.CheckPrivileges(p); err != nil {
		return errdefs.Classify(errdefs.ErrFailedPrecondition, err)
	}
	if p.Hash == "" {
		return fmt.Errorf("pod has no spec hash: %w", errdefs.ErrInvalidArgument)
	}
	if len(p.Containers) == 0 {
		return fmt.Errorf("pod has no containers: %w", errdefs.ErrInvalidArgument)
	}
	seen := map[string]bool{}
	for _, ctr := range allContainers(p) {
		switch {
		case ctr.Name == "" || ctr.Name == "." || ctr.Name == ".." || strings.ContainsAny(ctr.Name, "/\x00"):
			return fmt.Errorf("container name %q: %w", ctr.Name, errdefs.ErrInvalidArgument)
		case seen[ctr.Name]:
			return fmt.Errorf("container name %q is used twice: %w", ctr.Name, errdefs.ErrInvalidArgument)
		}
		seen[ctr.Name] = true
	}
	return nil
}

// allContainers lists a pod's init containers, then its app containers, in
// a new slice.
func allContainers(p *reconciler.Pod) []reconciler.Container {
	return append(append(make([]reconciler.Container, 0, len(p.InitContainers)+len(p.Containers)), p.InitContainers...), p.Containers...)
}

// CreatePod implements reconciler.Runtime: it creates what is missing of
// p. In order: the images of the containers it will create (so a missing
// image fails before anything is made), the pod's directory, its sandbox,
// its volumes and /etc files, then its init containers, one after another,
// each to exit 0, and then its missing app containers, started. On a pod
// whose app containers all exist it does nothing. Init containers run only
// while no app container exists: a pod that has started never runs them
// again.
func (c *Containerd) CreatePod(ctx context.Context, p reconciler.Pod) error {
	key := reconciler.JoinName(p.Namespace, p.Name)
	if err := c.checkPod(&p); err != nil {
		return fmt.Errorf("create pod %s: %w", key, err)
	}
	if err := c.createPod(c.client.WithNamespace(ctx), &p); err != nil {
		return fmt.Errorf("create pod %s: %w", key, err)
	}
	return nil
}

func (c *Containerd) createPod(ctx context.Context, p *reconciler.Pod) error {
	have, err := c.podContainers(ctx, p.Namespace, p.Name)
	if err != nil {
		return err
	}
	for name, rec := range have {
		if h := rec.Labels[reconciler.LabelSpecHash]; h != p.Hash {
			return fmt.Errorf("container %s exists with spec hash %s, not %s; remove the pod first: %w", name, h, p.Hash, errdefs.ErrFailedPrecondition)
		}
	}
	var missing []*reconciler.Container
	for i := range p.Containers {
		if _, ok := have[p.Containers[i].Name]; !ok {
			missing = append(missing, &p.Containers[i])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	runInits := len(missing) == len(p.Containers)

	// Images first: a missing image must fail before a sandbox exists.
	images := map[string]image.Image{}
	ensure := func(ctr *reconciler.Container) error {
		if _, ok := images[ctr.Image]; ok {
			return nil
		}
		img, err := c.client.EnsureImage(ctx, ctr.Image, image.PullPolicy(ctr.PullPolicy))
		if err != nil {
			return fmt.Errorf("container %s: %w", ctr.Name, err)
		}
		images[ctr.Image] = img
		return nil
	}
	if runInits {
		for i := range p.InitContainers {
			if _, ok := have[p.InitContainers[i].Name]; !ok {
				if err := ensure(&p.InitContainers[i]); err != nil {
					return err
				}
			}
		}
	}
	for _, ctr := range missing {
		if err := ensure(ctr); err != nil {
			return err
		}
	}

	dir, err := c.writePodMarker(p)
	if err != nil {
		return err
	}
	sb, err := c.net.Setup(ctx, *p)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	vols, err := c.vols.Prepare(*p)
	if err != nil {
		return fmt.Errorf("volumes: %w", err)
	}
	etc, err := writeEtc(dir, p, sb, c.clusterDNS())
	if err != nil {
		return fmt.Errorf("/etc files: %w", err)
	}
	res := podResources{sandbox: sb, volumes: vols, fixed: map[string]bool{}, etc: etc, cgroup: c.podCgroup(p.Namespace, p.Name),
		subPath: func(sp volume.SubPath) (string, error) {
			sp.Namespace, sp.Pod = p.Namespace, p.Name
			return c.vols.MountSubPath(sp)
		}}
	for _, v := range p.Volumes {
		if _, ok := v.Source.(reconciler.Projected); ok {
			res.fixed[v.Name] = true
		}
	}

	if runInits {
		for i := range p.InitContainers {
			if err := c.runInit(ctx, p, &p.InitContainers[i], images, res); err != nil {
				return err
			}
		}
	}
	for _, ctr := range missing {
		cont, err := c.ensureContainer(ctx, p, ctr, false, images[ctr.Image], res)
		if err != nil {
			return fmt.Errorf("container %s: %w", ctr.Name, err)
		}
		if err := c.startTask(ctx, cont, c.logPath(p.Namespace, p.Name, ctr.Name)); err != nil {
			return fmt.Errorf("container %s: %w", ctr.Name, err)
		}
		c.log.Info("container started", "pod", reconciler.JoinName(p.Namespace, p.Name), "container", ctr.Name, "id", cont.ID())
	}
	return nil
}

// writePodMarker creates the pod's directory and records the pod in it,
// before anything else of the pod exists, and returns the directory.
//
// A directory it made for the pod is removed again when the marker cannot
// be written (a full disk): without a marker Observe does not see it, and
// nothing would ever remove it.
func (c *Containerd) writePodMarker(p *reconciler.Pod) (_ string, err error) {
	dir := c.podDir(p.Namespace, p.Name)
	if _, serr := os.Lstat(dir); errors.Is(serr, os.ErrNotExist) {
		defer func() {
			if err != nil {
				removeBarePodDir(dir)
			}
		}()
	}
	if err := os.MkdirAll(filepath.Join(dir, podLogsDir), podDirMode); err != nil {
		return "", fmt.Errorf("pod dir: %w", err)
	}
	// Mkdir's mode is subject to the umask, and a pod dir made by an
	// earlier kelpie may be wider.
	for _, d := range []string{dir, filepath.Join(dir, podLogsDir)} {
		if err := os.Chmod(d, podDirMode); err != nil {
			return "", fmt.Errorf("pod dir: %w", err)
		}
	}
	m := podMarker{
		Pod: reconciler.JoinName(p.Namespace, p.Name), Hash: p.Hash, HostNetwork: p.HostNetwork,
		Networks: p.Networks, GraceSec: int64(p.TerminationGracePeriod / time.Second),
	}
	if old, err := readPodMarker(dir); err == nil && old.Hash != p.Hash {
		return "", fmt.Errorf("pod dir %s holds the pod with spec hash %s, not %s; remove the pod first: %w", dir, old.Hash, p.Hash, errdefs.ErrFailedPrecondition)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if err := writeEtcFile(filepath.Join(dir, podMarkerFile), append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("pod dir: %w", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dir)); err != nil { // the pod dir's own entry, made by MkdirAll
		return "", fmt.Errorf("pod dir: %w", err)
	}
	return dir, nil
}

// removeBarePodDir removes a pod directory that holds nothing but what
// writePodMarker makes before the marker (an empty logs dir, temporary
// files); a directory that holds anything else is left.
func removeBarePodDir(dir string) {
	statedir.RemoveTemps(dir)
	_ = os.Remove(filepath.Join(dir, podLogsDir))
	_ = os.Remove(dir)
}

// readPodMarker reads the marker of a pod directory.
func readPodMarker(dir string) (podMarker, error) {
	var m podMarker
	b, err := os.ReadFile(filepath.Join(dir, podMarkerFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(dir, podMarkerFile), err)
	}
	return m, nil
}

// runInit runs init container ctr of p to completion: one that exited 0
// is done, one that failed is run again (counting a restart), one that
// runs is waited for. A non-zero exit is an error.
func (c *Containerd) runInit(ctx context.Context, p *reconciler.Pod, ctr *reconciler.Container, images map[string]image.Image, res podResources) error {
	cont, err := c.ensureContainer(ctx, p, ctr, true, images[ctr.Image], res)
	if err != nil {
		return fmt.Errorf("init container %s: %w", ctr.Name, err)
	}
	t, st, err := taskOf(ctx, cont)
	if err != nil {
		return fmt.Errorf("init container %s: %w", ctr.Name, err)
	}
	if st.exists && !st.running() && st.status != containerd.Created {
		if st.status == containerd.Stopped && st.code == 0 {
			return nil
		}
		// It failed (or its shim was lost): run it again.
		if err := deleteTask(ctx, t); err != nil {
			return fmt.Errorf("init container %s: %w", ctr.Name, err)
		}
		if err := bumpRestarts(ctx, cont, st.exitedAt); err != nil {
			return fmt.Errorf("init container %s: %w", ctr.Name, err)
		}
	}
	c.log.Info("init container running", "pod", reconciler.JoinName(p.Namespace, p.Name), "container", ctr.Name)
	code, err := c.runTask(ctx, cont, c.logPath(p.Namespace, p.Name, ctr.Name))
	if err != nil {
		return fmt.Errorf("init container %s: %w", ctr.Name, err)
	}
	if code != 0 {
		return fmt.Errorf("init container %s exited with code %d", ctr.Name, code)
	}
	return nil
}

// bumpRestarts counts one more restart of a container whose last run
// ended at exitedAt: LabelRestarts one up, and LabelRestartStreak one up,
// or 1 when that run lasted workload.BackoffReset (the back-off resets).
func bumpRestarts(ctx context.Context, cont containerd.Container, exitedAt time.Time) error {
	labels, err := cont.Labels(ctx)
	if err != nil {
		return fmt.Errorf("read labels: %w", image.ConvertErr(err))
	}
	n, _ := strconv.Atoi(labels[reconciler.LabelRestarts])
	streak, err := strconv.Atoi(labels[reconciler.LabelRestartStreak])
	if err != nil {
		streak = n
	}
	if started, err := time.Parse(time.RFC3339Nano, labels[reconciler.LabelStartedAt]); err == nil && !exitedAt.IsZero() && exitedAt.Sub(started) >= workload.BackoffReset {
		streak = 0
	}
	if _, err := cont.SetLabels(ctx, map[string]string{reconciler.LabelRestarts: strconv.Itoa(n + 1), reconciler.LabelRestartStreak: strconv.Itoa(streak + 1)}); err != nil {
		return fmt.Errorf("count restart: %w", image.ConvertErr(err))
	}
	return nil
}

// ensureContainer returns the container ctr of p, creating it when it does
// not exist: get or create, so a retry after a crash never makes a second
// one. A container of that ID without kelpie's labels for it is refused,
// never touched.
func (c *Containerd) ensureContainer(ctx context.Context, p *reconciler.Pod, ctr *reconciler.Container, init bool, img image.Image, res podResources) (containerd.Container, error) {
	key := reconciler.JoinName(p.Namespace, p.Name)
	id := containerIDOf(p.Namespace, p.Name, ctr.Name)
	if cont, err := c.loadOwned(ctx, id, key, ctr.Name); err == nil || !errors.Is(err, errdefs.ErrNotFound) {
		if err == nil {
			// A crash between creating the container and releasing its
			// creation lease leaves the lease; the container holds its
			// snapshot now.
			c.releaseLease(ctx, id)
		}
		return cont, err
	}
	if img.Containerd() == nil {
		return nil, fmt.Errorf("image %s was not ensured: %w", ctr.Image, errdefs.ErrFailedPrecondition)
	}
	opts, err := c.specOpts(ctx, p, ctr, id, img, res)
	if err != nil {
		return nil, err
	}

	// A lease of our own, labelled, holds the new snapshot until the
	// container record does; a crash leaves it for RemovePod to find.
	lctx, done, err := c.containerLease(ctx, id, key)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := c.removeStaleSnapshot(lctx, id, key); err != nil {
		return nil, err
	}
	cont, err := c.cd.NewContainer(lctx, id,
		containerd.WithImage(img.Containerd()),
		containerd.WithSnapshotter(c.client.Snapshotter()),
		containerd.WithNewSnapshot(id, img.Containerd(), snapshots.WithLabels(map[string]string{
			reconciler.LabelManaged: reconciler.ManagedValue,
			reconciler.LabelPod:     key,
		})),
		containerd.WithNewSpec(opts...),
		containerd.WithContainerLabels(containerLabels(p, ctr.Name, init)),
	)
	if err != nil {
		err = image.ConvertErr(err)
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			return c.loadOwned(ctx, id, key, ctr.Name)
		}
		return nil, fmt.Errorf("create container: %w", err)
	}
	c.log.Info("container created", "pod", key, "container", ctr.Name, "id", id, "image", img.Ref, "image-source", string(img.Source), "image-from", img.From)
	return cont, nil
}

// loadOwned loads container id when it is the named container of pod key.
// errdefs.ErrNotFound when there is no container of that ID; an error, and no
// container, when one exists that is not kelpie's.
func (c *Containerd) loadOwned(ctx context.Context, id, key, name string) (containerd.Container, error) {
	cont, err := c.cd.LoadContainer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, image.ConvertErr(err))
	}
	// The record LoadContainer just read has the labels: no second call.
	info, err := cont.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, image.ConvertErr(err))
	}
	if !ownedBy(info.Labels, key, name) {
		return nil, fmt.Errorf("container %s exists without kelpie's labels for %s/%s; kelpie leaves it alone: %w", id, key, name, errdefs.ErrAlreadyExists)
	}
	return cont, nil
}

// containerLease takes the labelled lease of container id of pod key,
// reusing one a crash left behind, and returns a context using it and a
// function that releases it.
func (c *Containerd) containerLease(ctx context.Context, id, key string) (context.Context, func(), error) {
	ls := c.cd.LeasesService()
	_, err := ls.Create(ctx, leases.WithID(id), leases.WithExpiration(leaseExpiry), leases.WithLabels(map[string]string{
		reconciler.LabelManaged: reconciler.ManagedValue,
		reconciler.LabelPod:     key,
	}))
	if err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrAlreadyExists) {
		return nil, nil, fmt.Errorf("lease: %w", image.ConvertErr(err))
	}
	// The container holds its snapshot once created (or creating it
	// failed): the lease goes then.
	return leases.WithLease(ctx, id), func() { c.releaseLease(ctx, id) }, nil
}

// releaseLease deletes lease id, even when ctx is done; a lease that does
// not exist is not an error.
func (c *Containerd) releaseLease(ctx context.Context, id string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.cd.LeasesService().Delete(dctx, leases.Lease{ID: id}); err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
		c.log.Warn("release lease", "lease", id, "err", err)
	}
}

// removeStaleSnapshot removes the snapshot of container id left by an
// interrupted creation (the container does not exist), when it is
// labelled as pod key's. Anyone else's snapshot of that key is refused.
func (c *Containerd) removeStaleSnapshot(ctx context.Context, id, key string) error {
	ss := c.cd.SnapshotService(c.client.Snapshotter())
	info, err := ss.Stat(ctx, id)
	if err != nil {
		if errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("snapshot %s: %w", id, image.ConvertErr(err))
	}
	if info.Labels[reconciler.LabelManaged] != reconciler.ManagedValue || info.Labels[reconciler.LabelPod] != key {
		return fmt.Errorf("snapshot %s exists without kelpie's labels for %s: %w", id, key, errdefs.ErrAlreadyExists)
	}
	if err := ss.Remove(ctx, id); err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
		return fmt.Errorf("remove stale snapshot %s: %w", id, image.ConvertErr(err))
	}
	return nil
}

// RestartContainer implements reconciler.Runtime: it starts a new task for
// a container of p that is not running, counting a restart when the old
// task had run. A running container is left alone.
func (c *Containerd) RestartContainer(ctx context.Context, p reconciler.Pod, container string) error {
	key := reconciler.JoinName(p.Namespace, p.Name)
	if err := c.restartContainer(c.client.WithNamespace(ctx), &p, container); err != nil {
		return fmt.Errorf("restart container %s/%s: %w", key, container, err)
	}
	return nil
}

func (c *Containerd) restartContainer(ctx context.Context, p *reconciler.Pod, name string) error {
	known := false
	for _, ctr := range allContainers(p) {
		known = known || ctr.Name == name
	}
	if !known {
		return fmt.Errorf("the pod has no such container: %w", errdefs.ErrInvalidArgument)
	}
	key := reconciler.JoinName(p.Namespace, p.Name)
	cont, err := c.loadOwned(ctx, containerIDOf(p.Namespace, p.Name, name), key, name)
	if err != nil {
		return err
	}
	// A container without a task may be one whose creation was cut short
	// before its creation lease was released.
	c.releaseLease(ctx, cont.ID())
	t, st, err := taskOf(ctx, cont)
	if err != nil {
		return err
	}
	if st.running() {
		return nil
	}
	logPath := c.logPath(p.Namespace, p.Name, name)
	ran := false
	if st.exists {
		if err := deleteTask(ctx, t); err != nil {
			return err
		}
		if st.status != containerd.Created { // it ran
			ran = true
			if err := bumpRestarts(ctx, cont, st.exitedAt); err != nil {
				return err
			}
		}
	} else if fi, err := os.Stat(logPath); err == nil && fi.Size() > 0 {
		ran = true // its task went with the host's reboot
	}
	if ran {
		// Its output stays apart from the next run's (LogsPrevious).
		if err := c.splitRun(logPath); err != nil {
			return err
		}
	}
	if err := c.restageSubPaths(p, name); err != nil {
		return err
	}
	if err := c.startTask(ctx, cont, logPath); err != nil {
		return err
	}
	c.log.Info("container restarted", "pod", key, "container", name, "id", cont.ID())
	return nil
}

// restageSubPaths binds container name's subPath mounts again before its
// task starts: the binds kelpie made when it created the container do not
// survive a reboot of the host, and a container started over their empty
// staging dirs would see nothing of its volume (and write beside it).
func (c *Containerd) restageSubPaths(p *reconciler.Pod, name string) error {
	var ctr *reconciler.Container
	for _, x := range allContainers(p) {
		if x.Name == name {
			ctr = &x
		}
	}
	if ctr == nil || !slices.ContainsFunc(ctr.Mounts, func(m reconciler.Mount) bool { return m.SubPath != "" }) {
		return nil
	}
	vols, err := c.vols.Prepare(*p)
	if err != nil {
		return fmt.Errorf("volumes: %w", err)
	}
	for i, m := range ctr.Mounts {
		if m.SubPath == "" {
			continue
		}
		_, projected := volumeSource(p, m.Volume).(reconciler.Projected)
		sp := volume.SubPath{Namespace: p.Namespace, Pod: p.Name, Volume: m.Volume, Root: vols[m.Volume], Container: ctr.Name, Index: i, Path: m.SubPath, Create: !projected}
		if _, err := c.vols.MountSubPath(sp); err != nil {
			return fmt.Errorf("mount of volume %s: %w", m.Volume, err)
		}
	}
	return nil
}

// volumeSource is the source of p's volume name, nil when it has none.
func volumeSource(p *reconciler.Pod, name string) any {
	for _, v := range p.Volumes {
		if v.Name == name {
			return v.Source
		}
	}
	return nil
}

// RemovePod implements reconciler.Runtime: it stops and deletes the pod's
// containers (all at once, so the pod takes one grace period), then its
// leftover snapshots and leases, its sandbox, its volumes, its cgroups and
// its directory. Only objects labelled as the pod's are touched; a pod
// that does not exist, or exists in part, is removed as far as it exists.
func (c *Containerd) RemovePod(ctx context.Context, namespace, name string, grace time.Duration) error {
	key := reconciler.JoinName(namespace, name)
	if err := c.removePod(c.client.WithNamespace(ctx), namespace, name, grace); err != nil {
		return fmt.Errorf("remove pod %s: %w", key, err)
	}
	return nil
}

func (c *Containerd) removePod(ctx context.Context, namespace, name string, grace time.Duration) error {
	key := reconciler.JoinName(namespace, name)
	recs, err := c.cd.ContainerService().List(ctx, podFilter(namespace, name))
	if err != nil {
		return fmt.Errorf("list containers: %w", image.ConvertErr(err))
	}
	dir := c.podDir(namespace, name)
	var networks []string
	if m, err := readPodMarker(dir); err == nil {
		networks = m.Networks
	}
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, rec := range recs {
		if v := rec.Labels[reconciler.LabelPodNetworks]; v != "" && networks == nil {
			networks = strings.Split(v, ",")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.removeContainer(ctx, rec.ID, grace)
			if errs[i] == nil {
				c.log.Info("container removed", "pod", key, "container", rec.Labels[reconciler.LabelContainer], "id", rec.ID)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err // the sandbox stays while a container may still use it
	}
	if err := c.removeLeftovers(ctx, namespace, name); err != nil {
		return err
	}
	if err := c.net.Teardown(ctx, namespace, name, networks); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := c.vols.Remove(namespace, name); err != nil {
		return fmt.Errorf("volumes: %w", err)
	}
	removeCgroupDirs(c.podCgroup(namespace, name))
	if err := removePodDir(dir); err != nil {
		return err
	}
	return nil
}

// removeContainer stops the task of container id and deletes both, with
// the container's snapshot.
func (c *Containerd) removeContainer(ctx context.Context, id string, grace time.Duration) error {
	cont, err := c.cd.LoadContainer(ctx, id)
	if err != nil {
		if errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("container %s: %w", id, image.ConvertErr(err))
	}
	t, err := cont.Task(ctx, nil)
	switch {
	case err == nil:
		if err := stopTask(ctx, t, grace); err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
	case !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound):
		return fmt.Errorf("container %s: load task: %w", id, image.ConvertErr(err))
	default:
		// No task to load; an apply killed while creating one may have
		// left its record or shim, which would outlive the container.
		c.deleteStaleTask(ctx, id)
	}
	if err := cont.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
		return fmt.Errorf("container %s: delete: %w", id, image.ConvertErr(err))
	}
	return nil
}

// removeLeftovers deletes the pod's leases and the snapshots no container
// uses, which an interrupted CreatePod leaves.
func (c *Containerd) removeLeftovers(ctx context.Context, namespace, name string) error {
	filter := podFilter(namespace, name)
	ls := c.cd.LeasesService()
	lss, err := ls.List(ctx, filter)
	if err != nil {
		return fmt.Errorf("list leases: %w", image.ConvertErr(err))
	}
	for _, l := range lss {
		if err := ls.Delete(ctx, l); err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
			return fmt.Errorf("delete lease %s: %w", l.ID, image.ConvertErr(err))
		}
	}
	ss := c.cd.SnapshotService(c.client.Snapshotter())
	var keys []string
	err = ss.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		keys = append(keys, info.Name)
		return nil
	}, filter)
	if err != nil {
		return fmt.Errorf("list snapshots: %w", image.ConvertErr(err))
	}
	for _, k := range keys {
		if err := ss.Remove(ctx, k); err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
			return fmt.Errorf("remove snapshot %s: %w", k, image.ConvertErr(err))
		}
	}
	return nil
}

// removePodDir removes a pod's directory, unless something is still
// mounted below it: removing the files of a mounted host path or claim
// would destroy data that is not the pod's. The marker goes last, so a
// removal that is interrupted leaves the pod for Observe to find.
func removePodDir(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("pod dir: read mounts: %w", err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("pod dir %s still has a mount at %s; not removing it: %w", dir, mounts[0].Mountpoint, errdefs.ErrFailedPrecondition)
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod dir: %w", err)
	}
	for _, e := range ents {
		if e.Name() != podMarkerFile {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("pod dir: %w", err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("pod dir: %w", err)
	}
	return nil
}

// removeCgroupDirs removes the (empty) cgroup directory of a pod in every
// cgroup hierarchy, which runc leaves behind; it only ever calls rmdir, so
// a cgroup that still has processes stays.
func removeCgroupDirs(cgroup string) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return
	}
	for _, m := range mounts {
		_ = os.Remove(path.Join(m.Mountpoint, cgroup))
	}
}
