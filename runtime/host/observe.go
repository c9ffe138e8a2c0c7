package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"

	"github.com/kelpie-dev/kelpie/internal/proc"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/runtime/network"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// observedPod gathers what Observe finds of one pod, wherever it finds it.
type observedPod struct {
	namespace, name string
	hashes          map[string]bool
	hostNetwork     bool
	networks        []string
	grace           time.Duration
	graceKnown      bool
	owner           reconciler.Owner
	containers      []reconciler.ActualContainer
	sandbox         *network.Sandbox
	dirExists       bool
}

// Observe implements reconciler.Runtime. A pod is everything of it kelpie
// made: its labelled containers, the lease of a container creation that
// was interrupted, its sandbox and its directory under the state dir; so a
// pod kelpie began to create and never finished is reported, and the plan
// completes or removes it. Containers without kelpie's labels do not exist
// for it. (A labelled snapshot without a container is held only by such a
// lease, or containerd's garbage collector removes it.)
//
// It takes a handful of calls whatever the number of pods: one list of
// containers, one of tasks, one of leases, and reads of the state dir.
func (c *Containerd) Observe(ctx context.Context) (reconciler.Actual, error) {
	ctx = c.client.WithNamespace(ctx)
	pods := map[string]*observedPod{}
	get := func(key string) *observedPod {
		if p, ok := pods[key]; ok {
			return p
		}
		ns, name, ok := reconciler.SplitName(key)
		if !ok {
			return nil
		}
		p := &observedPod{namespace: ns, name: name, hashes: map[string]bool{}}
		pods[key] = p
		return p
	}

	recs, err := c.cd.ContainerService().List(ctx, managedFilter)
	if err != nil {
		return reconciler.Actual{}, fmt.Errorf("observe: list containers: %w", image.ConvertErr(err))
	}
	resp, err := c.cd.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return reconciler.Actual{}, fmt.Errorf("observe: list tasks: %w", image.ConvertErr(err))
	}
	tasks := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, t := range resp.Tasks {
		tasks[t.ID] = t // a task's ID is its container's; containerd leaves ContainerID empty here
	}
	for _, rec := range recs {
		l := rec.Labels
		p := get(l[reconciler.LabelPod])
		name := l[reconciler.LabelContainer]
		if p == nil || name == "" {
			c.log.Warn("container with malformed kelpie labels ignored", "id", rec.ID)
			continue
		}
		p.hashes[l[reconciler.LabelSpecHash]] = true
		if kind, name, ok := strings.Cut(l[reconciler.LabelOwner], "/"); ok && p.owner.Kind == "" {
			p.owner = reconciler.Owner{Kind: kind, Name: name}
		}
		p.hostNetwork = p.hostNetwork || l[labelHostNetwork] == reconciler.ManagedValue
		if v := l[reconciler.LabelPodNetworks]; v != "" && p.networks == nil {
			p.networks = strings.Split(v, ",")
		}
		if s, err := strconv.ParseInt(l[reconciler.LabelGracePeriod], 10, 64); err == nil && !p.graceKnown {
			p.grace, p.graceKnown = time.Duration(s)*time.Second, true
		}
		restarts, _ := strconv.Atoi(l[reconciler.LabelRestarts])
		ac := containerState(name, restarts, tasks[rec.ID])
		ac.Streak = restarts // containers made before the streak label
		if n, err := strconv.Atoi(l[reconciler.LabelRestartStreak]); err == nil {
			ac.Streak = n
		}
		if ac.State == reconciler.Exited {
			if t, err := time.Parse(time.RFC3339Nano, l[reconciler.LabelStartedAt]); err == nil {
				ac.StartedAt = t
			}
		}
		p.containers = append(p.containers, ac)
	}

	sbs, err := c.net.Sandboxes()
	if err != nil {
		return reconciler.Actual{}, fmt.Errorf("observe: sandboxes: %w", err)
	}
	for key, sb := range sbs {
		if p := get(key); p != nil {
			p.sandbox = &sb
		}
	}

	lss, err := c.cd.LeasesService().List(ctx, managedFilter)
	if err != nil {
		return reconciler.Actual{}, fmt.Errorf("observe: list leases: %w", image.ConvertErr(err))
	}
	for _, l := range lss {
		get(l.Labels[reconciler.LabelPod])
	}

	if err := c.observePodDirs(get); err != nil {
		return reconciler.Actual{}, err
	}

	var a reconciler.Actual
	for _, p := range pods {
		a.Pods = append(a.Pods, p.actual())
	}
	sort.Slice(a.Pods, func(i, j int) bool {
		if a.Pods[i].Namespace != a.Pods[j].Namespace {
			return a.Pods[i].Namespace < a.Pods[j].Namespace
		}
		return a.Pods[i].Name < a.Pods[j].Name
	})
	if a.Networks, err = c.net.Networks(); err != nil {
		return reconciler.Actual{}, fmt.Errorf("observe: networks: %w", err)
	}
	if a.Claims, err = c.vols.Claims(); err != nil {
		return reconciler.Actual{}, fmt.Errorf("observe: claims: %w", err)
	}
	return a, nil
}

// observePodDirs adds what the pod directories under the state dir record.
func (c *Containerd) observePodDirs(get func(string) *observedPod) error {
	root := c.podsDir
	ents, err := os.ReadDir(root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("observe: %w", err)
	}
	for _, e := range ents {
		ns, name, ok := statedir.SplitKey(e.Name())
		if !e.IsDir() || !ok {
			continue
		}
		dir := filepath.Join(root, e.Name())
		m, err := readPodMarker(dir)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				c.log.Warn("unreadable pod directory ignored", "dir", dir, "err", err)
			}
			continue
		}
		if m.Pod != reconciler.JoinName(ns, name) {
			c.log.Warn("pod directory with a foreign marker ignored", "dir", dir)
			continue
		}
		p := get(m.Pod)
		p.dirExists = true
		p.hashes[m.Hash] = true
		p.hostNetwork = p.hostNetwork || m.HostNetwork
		if p.networks == nil {
			p.networks = m.Networks
		}
		if !p.graceKnown {
			p.grace, p.graceKnown = time.Duration(m.GraceSec)*time.Second, true
		}
	}
	return nil
}

// actual is the pod as the planner sees it. Its hash is the one every part
// agrees on, "" when they disagree or no part records one; its sandbox is
// ready when the pod's directory exists and, unless it uses the host's
// network, its network namespace is mounted and joined to its networks.
func (p *observedPod) actual() reconciler.ActualPod {
	a := reconciler.ActualPod{
		Namespace:   p.namespace,
		Name:        p.name,
		Owner:       p.owner,
		Networks:    p.networks,
		GracePeriod: p.grace,
		Containers:  p.containers,
	}
	if len(p.hashes) == 1 {
		for h := range p.hashes {
			a.Hash = h
		}
	}
	a.SandboxReady = p.dirExists && (p.hostNetwork || (p.sandbox != nil && p.sandbox.Ready))
	a.HostNetwork = p.hostNetwork
	if p.sandbox != nil {
		a.IP = p.sandbox.IP
		if a.Networks == nil && len(p.sandbox.IPs) > 0 { // a sandbox alone: it knows what it joined
			for n := range p.sandbox.IPs {
				a.Networks = append(a.Networks, n)
			}
			sort.Strings(a.Networks)
		}
	}
	sort.Slice(a.Containers, func(i, j int) bool { return a.Containers[i].Name < a.Containers[j].Name })
	return a
}

// containerState maps a container's task, nil when it has none, to the
// planner's view.
func containerState(name string, restarts int, t *tasktypes.Process) reconciler.ActualContainer {
	ac := reconciler.ActualContainer{Name: name, Restarts: restarts, State: reconciler.Created}
	if t == nil {
		return ac
	}
	switch t.Status {
	case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		ac.State = reconciler.Running
		ac.StartedAt = proc.StartTime(int(t.Pid)) // for minReadySeconds
	case tasktypes.Status_CREATED:
		ac.State = reconciler.Created
	default: // STOPPED, or UNKNOWN when its shim is gone: either way it does not run
		ac.State = reconciler.Exited
		ac.ExitCode = int(t.ExitStatus)
		if t.Status == tasktypes.Status_UNKNOWN && ac.ExitCode == 0 {
			ac.ExitCode = -1
		}
		if t.ExitedAt != nil && t.ExitedAt.IsValid() {
			ac.FinishedAt = t.ExitedAt.AsTime()
		}
	}
	return ac
}
