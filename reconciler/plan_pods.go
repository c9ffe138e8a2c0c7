package reconciler

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
	"github.com/kelpie-dev/kelpie/workload"
)

// pods plans the pods and their containers. It returns the networks that
// pods staying on the host join, each mapped to one such pod.
func (p *planner) pods(desired []Pod, remove []Removal, actual map[string]*ActualPod) map[string]string {
	removals := make(map[string]string, len(remove))
	for _, r := range remove {
		removals[JoinName(r.Namespace, r.Name)] = r.Reason
	}
	used := map[string]string{}
	want := make(map[string]bool, len(desired))
	allowed, refused := p.refuse(desired)
	p.slots = slots(desired, actual)
	held := p.statefulSets(allowed, actual, p.rollouts(allowed, actual))
	for i := range desired {
		d := &desired[i]
		key := JoinName(d.Namespace, d.Name)
		want[key] = true
		for _, n := range d.Networks {
			if _, ok := used[n]; !ok {
				used[n] = key
			}
		}
		if refused[key] {
			continue // a wait says why
		}
		if _, ok := held[key]; ok {
			continue // an available pod: nothing to do but wait
		}
		a, ok := actual[key]
		if !ok {
			p.act(Action{Kind: Create, Subject: podSubject(d.Namespace, d.Name), Reason: p.createReason(d), Stage: StagePods, Pod: d})
			continue
		}
		p.pod(d, a)
	}
	p.retireRest(desired, refused)
	p.rolloutWaits(allowed, held)
	p.surgeWaits()
	obsolete := make([]string, 0, len(actual))
	for key := range actual {
		if !want[key] && !p.slots.handled[key] {
			obsolete = append(obsolete, key)
		}
	}
	sort.Strings(obsolete) // deterministic "used" pods for the notices
	later := p.statefulRemovals(obsolete, desired, actual)
	for _, key := range obsolete {
		a := actual[key]
		s := podSubject(a.Namespace, a.Name)
		if w, ok := later[key]; ok && (p.opts.Prune || removals[key] != "") {
			if w.remote { // the other host's gossiped status says when it is gone
				p.wait(s, p.opts.Now.Add(remotePoll), "StatefulSet %s: pods stop from the highest ordinal down; waits for %s to be removed on its host", a.Owner.Name, w.after)
				continue
			}
			// Removed once the higher ordinal is gone: plan again at once.
			p.wait(s, p.opts.Now, "StatefulSet %s: pods stop from the highest ordinal down; waits for %s to be removed", a.Owner.Name, w.after)
			p.res.Continue = true
			continue
		}
		if why, ok := removals[key]; ok {
			p.act(Action{Kind: Delete, Subject: s, Reason: why, Stage: StageRemovePods, Grace: a.GracePeriod})
			continue
		}
		if p.opts.Prune {
			p.act(Action{Kind: Delete, Subject: s, Reason: "no longer desired", Stage: StageRemovePods, Grace: a.GracePeriod})
			continue
		}
		p.keep(s, "no longer desired; kept because pruning is off")
		for _, n := range a.Networks {
			if _, ok := used[n]; !ok {
				used[n] = key
			}
		}
	}
	return used
}

// refuse adds a wait for each desired pod that asks for more than
// opts.Privileges grants. It returns the other pods (desired itself when
// none is refused) and the keys of the refused ones.
func (p *planner) refuse(desired []Pod) ([]Pod, map[string]bool) {
	if p.opts.Privileges == nil {
		return desired, nil
	}
	var refused map[string]bool
	for i := range desired {
		d := &desired[i]
		var perr *PrivilegeError
		if !errors.As(p.opts.Privileges.CheckPrivileges(d), &perr) {
			continue
		}
		if refused == nil {
			refused = map[string]bool{}
		}
		refused[JoinName(d.Namespace, d.Name)] = true
		p.wait(podSubject(d.Namespace, d.Name), time.Time{}, "%s", perr.Reason())
	}
	if refused == nil {
		return desired, nil
	}
	allowed := make([]Pod, 0, len(desired)-len(refused))
	for i := range desired {
		if !refused[JoinName(desired[i].Namespace, desired[i].Name)] {
			allowed = append(allowed, desired[i])
		}
	}
	return allowed, refused
}

// rolloutWaits adds a wait for each changed pod a rolling update holds
// back. It is due at once (opts.Now) when the plan acts on a pod of its
// Deployment, so a loop that plans again after executing the plan goes on
// with the next pods once those run; else when the first Ready pod of the
// Deployment has been Ready for minReadySeconds; otherwise only a change
// on the host moves it on: a pod becoming Ready (PlanResult.Pending says
// some are coming up), or the rollout is stuck on pods that do not come up.
func (p *planner) rolloutWaits(desired []Pod, held map[string]rolloutWait) {
	if len(held) == 0 {
		return
	}
	acted := map[string]bool{}
	for _, a := range p.res.Actions {
		if a.Subject.Type == SubjectPod || a.Subject.Type == SubjectContainer {
			acted[JoinName(a.Subject.Namespace, a.Subject.Name)] = true
		}
	}
	for i := range desired {
		d := &desired[i]
		w, ok := held[JoinName(d.Namespace, d.Name)]
		if !ok {
			continue
		}
		until := w.until
		moving := false
		for _, key := range w.group {
			if acted[key] {
				until, moving = p.opts.Now, true
				p.res.Continue = true
				break
			}
		}
		if !moving && w.pending {
			p.res.Pending = true
		}
		name := d.Name
		if w.name != "" {
			name = w.name
		}
		p.wait(podSubject(d.Namespace, name), until, "%s", w.reason)
	}
}

// pod plans one desired pod that exists on the host.
func (p *planner) pod(d *Pod, a *ActualPod) {
	s := podSubject(d.Namespace, d.Name)
	replace := func(reason string) {
		p.act(Action{Kind: Replace, Subject: s, Reason: reason, Stage: StagePods, Pod: d, Grace: a.GracePeriod})
	}
	job := d.Owner.Kind == specs.KindJob
	if job && jobPodDone(d, a) {
		return // finished: kept as it is, with its logs, until the Job deletes it
	}
	switch {
	case a.Hash != d.Hash && d.Rollout.OnDelete && a.SandboxReady && len(unexpected(d, a)) == 0 && allRunning(a):
		p.wait(s, time.Time{}, "updateStrategy OnDelete: runs its previous template (%s) until it stops or is removed", shortHash(a.Hash))
		return
	case a.Hash != d.Hash && d.Rollout.Stateful && d.Ordinal < d.Rollout.Partition && a.SandboxReady && len(unexpected(d, a)) == 0 && allRunning(a):
		p.wait(s, time.Time{}, "rollingUpdate partition %d: ordinal %d keeps its previous template (%s) until it stops or is removed", d.Rollout.Partition, d.Ordinal, shortHash(a.Hash))
		return
	case a.Hash != d.Hash && !job:
		replace(changed(a.Hash, d.Hash))
		return
	case !a.SandboxReady:
		replace("sandbox gone")
		return
	case !d.HostNetwork && p.outsideSubnet(a.IP):
		replace(fmt.Sprintf("address %s is outside this host's pod range %s", a.IP, p.opts.PodSubnet))
		return
	}
	state := make(map[string]ActualContainer, len(a.Containers))
	for _, c := range a.Containers {
		state[c.Name] = c
	}
	if extra := unexpected(d, a); len(extra) > 0 {
		replace(fmt.Sprintf("unexpected %s %s", plural(len(extra), "container", "containers"), strings.Join(extra, ", ")))
		return
	}
	var missing []string
	for _, c := range d.Containers {
		if st, ok := state[c.Name]; !ok || st.State == Missing {
			missing = append(missing, c.Name)
		}
	}
	if len(missing) > 0 {
		p.incomplete(d, state, missing)
	}
	for _, c := range d.Containers {
		st, ok := state[c.Name]
		if !ok {
			continue
		}
		cs := containerSubject(d.Namespace, d.Name, c.Name)
		switch st.State {
		case Created:
			p.act(Action{Kind: Update, Subject: cs, Reason: fmt.Sprintf("container %s created but never started", c.Name), Stage: StageContainers, Pod: d})
		case Exited:
			dec := decideRestart(d.RestartPolicy, st, p.opts.Now)
			what := fmt.Sprintf("container %s exited %d, restart %d", c.Name, st.ExitCode, st.Restarts+1)
			switch dec.Action {
			case workload.RestartLater:
				p.wait(cs, dec.At, "%s waits for back-off %s", what, dec.Wait)
			case workload.RestartNow:
				p.act(Action{Kind: Update, Subject: cs, Reason: what + restartWhen(dec), Stage: StageContainers, Pod: d})
			}
		}
	}
}

// incomplete plans a pod that lacks some of its app containers: an update
// that creates them, unless a failed init container has to wait for its
// back-off or, with restartPolicy Never, means the pod failed for good.
func (p *planner) incomplete(d *Pod, state map[string]ActualContainer, missing []string) {
	s := podSubject(d.Namespace, d.Name)
	for _, c := range d.InitContainers {
		st, ok := state[c.Name]
		if !ok || st.State != Exited || st.ExitCode == 0 {
			continue
		}
		if d.RestartPolicy == RestartNever {
			p.wait(s, time.Time{}, "init container %s failed (exit %d) and restartPolicy is Never", c.Name, st.ExitCode)
			return
		}
		// An init container that succeeded is done: it is retried as
		// OnFailure whatever the pod's policy (Never stopped above).
		dec := decideRestart(RestartOnFailure, st, p.opts.Now)
		what := fmt.Sprintf("init container %s exited %d, retry %d", c.Name, st.ExitCode, st.Restarts+1)
		if dec.Action == workload.RestartLater {
			p.wait(s, dec.At, "%s waits for back-off %s", what, dec.Wait)
			return
		}
		p.act(Action{Kind: Update, Subject: s, Reason: what + restartWhen(dec), Stage: StagePods, Pod: d})
		return
	}
	p.act(Action{Kind: Update, Subject: s, Reason: fmt.Sprintf("%s %s missing", plural(len(missing), "container", "containers"), strings.Join(missing, ", ")), Stage: StagePods, Pod: d})
}

// decideRestart is workload.DecideRestart for an exited container as the
// runtime reports it: the kubelet's rules (the first restart of a streak at
// once, then 10 s doubling to 5 minutes; a 10-minute run resets the streak).
func decideRestart(policy RestartPolicy, st ActualContainer, now time.Time) workload.RestartDecision {
	return workload.DecideRestart(corev1.RestartPolicy(policy), st.ExitCode, workload.RestartHistory{
		Restarts: st.Restarts, Streak: st.Streak, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
	}, now)
}

// restartWhen says when a restart happens, for an action's reason.
func restartWhen(d workload.RestartDecision) string {
	if d.Wait == 0 {
		return " at once"
	}
	return fmt.Sprintf(" after back-off %s", d.Wait)
}

// unexpected lists, sorted, the actual containers of a pod that its spec
// does not have (possible only when labels were tampered with).
func unexpected(d *Pod, a *ActualPod) []string {
	known := map[string]bool{}
	for _, c := range d.InitContainers {
		known[c.Name] = true
	}
	for _, c := range d.Containers {
		known[c.Name] = true
	}
	var extra []string
	for _, c := range a.Containers {
		if !known[c.Name] && c.State != Missing {
			extra = append(extra, c.Name)
		}
	}
	sort.Strings(extra)
	return extra
}

// outsideSubnet reports whether a pod address is known and outside the
// host's pod range (PlanOptions.PodSubnet, when set).
func (p *planner) outsideSubnet(ip string) bool {
	if !p.opts.PodSubnet.IsValid() || ip == "" {
		return false
	}
	addr, err := netip.ParseAddr(ip)
	return err == nil && !p.opts.PodSubnet.Contains(addr)
}

// allRunning reports whether every container the pod has that is not a
// completed init container runs.
func allRunning(a *ActualPod) bool {
	n := 0
	for _, c := range a.Containers {
		switch c.State {
		case Running:
			n++
		case Created, Missing:
			return false
		}
	}
	return n > 0
}
