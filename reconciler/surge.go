package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// maxSurge: a replica of a Deployment is a slot, NAME-ORDINAL (SlotName),
// which the scheduler places and the leader paces. The pod that holds a
// slot is named either NAME-ORDINAL, the name Deployment pods have always
// had, or NAME-ORDINAL-HASH (SurgeName), HASH the first 10 hex digits of
// its spec hash, when it was created beside the pod it replaces. A pod
// keeps its name for its whole life: BindSlots names each desired pod
// after the pod of its slot that runs its spec hash, so that neither an
// upgrade of kelpie nor a finished rollout renames (restarts) a pod.

// surgeSuffixLen is the length of a surge name's hash suffix. An ordinal
// of that many digits would need far more than specs.MaxReplicas replicas,
// so NAME-ORDINAL-HASH never reads as another Deployment's NAME-ORDINAL.
const surgeSuffixLen = 10

// SlotName is the slot a Deployment's pod holds: OWNER-ORDINAL, the name
// Expand gives it; "" for the pods of other kinds.
func SlotName(p *Pod) string {
	if p.Owner.Kind != specs.KindDeployment {
		return ""
	}
	return p.Owner.Name + "-" + strconv.Itoa(p.Ordinal)
}

// SurgeName is the name of a pod created in slot beside the slot's pod:
// SLOT-HASH, HASH the first 10 hex digits of its spec hash (of a digest of
// hash when that is not hex).
func SurgeName(slot, hash string) string {
	_, h, _ := strings.Cut(hash, ":")
	if len(h) < surgeSuffixLen || !isLowerHex(h[:surgeSuffixLen]) {
		sum := sha256.Sum256([]byte(hash))
		h = hex.EncodeToString(sum[:])
	}
	return slot + "-" + h[:surgeSuffixLen]
}

// SlotOf returns the slot a surge name (SurgeName) holds: the name without
// its hash suffix. ok is false for a name without such a suffix.
func SlotOf(name string) (slot string, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || len(name)-i-1 != surgeSuffixLen || !isLowerHex(name[i+1:]) {
		return "", false
	}
	slot = name[:i]
	j := strings.LastIndexByte(slot, '-')
	if j <= 0 || !isOrdinal(slot[j+1:]) {
		return "", false
	}
	return slot, true
}

// slotOfActual returns the slot an actual pod of a Deployment holds, from
// its owner label and its name (OWNER-ORDINAL or OWNER-ORDINAL-HASH).
func slotOfActual(a *ActualPod) (string, bool) {
	if a.Owner.Kind != specs.KindDeployment || a.Owner.Name == "" {
		return "", false
	}
	rest, ok := strings.CutPrefix(a.Name, a.Owner.Name+"-")
	if !ok {
		return "", false
	}
	ord, suffix, surged := strings.Cut(rest, "-")
	if !isOrdinal(ord) || (surged && (len(suffix) != surgeSuffixLen || !isLowerHex(suffix))) {
		return "", false
	}
	return a.Owner.Name + "-" + ord, true
}

// isOrdinal reports whether s is a decimal ordinal without leading zeros.
func isOrdinal(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// isLowerHex reports whether s is made of 0-9 and a-f only.
func isLowerHex(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return s != ""
}

// bindsHostPorts reports whether a pod of spec takes ports of its host:
// hostNetwork, or a container port with a hostPort.
func bindsHostPorts(spec *corev1.PodSpec) bool {
	if spec.HostNetwork {
		return true
	}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				return true
			}
		}
	}
	return false
}

// slotKey identifies a slot on the host: "namespace/OWNER/SLOT".
func slotKey(namespace string, owner, slot string) string {
	return namespace + "/" + owner + "/" + slot
}

// actualSlots groups the host's Deployment pods by slot (slotKey), each
// group sorted by name.
func actualSlots(pods []ActualPod) map[string][]*ActualPod {
	out := map[string][]*ActualPod{}
	for i := range pods {
		a := &pods[i]
		if s, ok := slotOfActual(a); ok {
			k := slotKey(a.Namespace, a.Owner.Name, s)
			out[k] = append(out[k], a)
		}
	}
	for _, g := range out {
		sort.Slice(g, func(i, j int) bool { return g[i].Name < g[j].Name })
	}
	return out
}

// BindSlots returns desired with each Deployment pod named after the pod
// that holds, or will hold, its slot on the host (actual):
//
//   - the pod of the slot that runs the desired spec hash, when there is
//     one (the slot's own name preferred);
//   - else, when the slot has no pod, the slot's name;
//   - else, when the pod may surge (a rolling update with MaxSurge above
//     0), a name no pod of the host and no other desired pod has: the
//     SurgeName, or the slot's name once that is free again;
//   - else the name of the slot's pod, which is replaced in place.
//
// Only Name changes: the pod's host name and its metadata.name stay the
// slot's name. BindSlots is pure and idempotent; Plan calls it, and a
// caller that matches desired pods to actual ones by name (readiness,
// status) calls it first too. desired itself is not modified.
func BindSlots(desired Desired, actual Actual) Desired {
	return bindSlots(desired, actual, true)
}

// bindSlots is BindSlots; without rolling (a plan without
// PlanOptions.RollingUpdates, which replaces every changed pod at once) no
// pod surges and each replaces its slot's pod in place.
func bindSlots(desired Desired, actual Actual, rolling bool) Desired {
	slots := actualSlots(actual.Pods)
	if len(slots) == 0 {
		return desired
	}
	taken := make(map[string]bool, len(actual.Pods)+len(desired.Pods))
	for _, a := range actual.Pods {
		taken[JoinName(a.Namespace, a.Name)] = true
	}
	for _, d := range desired.Pods {
		taken[JoinName(d.Namespace, d.Name)] = true
	}
	out := desired
	out.Pods = slices.Clone(desired.Pods)
	for i := range out.Pods {
		d := &out.Pods[i]
		slot := SlotName(d)
		if slot == "" {
			continue
		}
		have := slots[slotKey(d.Namespace, d.Owner.Name, slot)]
		name := bindName(d, slot, have, rolling, func(n string) bool { return !taken[JoinName(d.Namespace, n)] || n == d.Name })
		if name != d.Name {
			taken[JoinName(d.Namespace, name)] = true
			d.Name = name
		}
	}
	return out
}

// bindName picks the name of desired pod d of slot, whose pods on the
// host are have; free reports whether a name is unused. Only with
// rolling may it surge.
func bindName(d *Pod, slot string, have []*ActualPod, rolling bool, free func(string) bool) string {
	var current []string
	for _, a := range have {
		if a.Hash != "" && a.Hash == d.Hash {
			current = append(current, a.Name)
		}
	}
	names := func(pods []*ActualPod) []string {
		out := make([]string, len(pods))
		for i, a := range pods {
			out[i] = a.Name
		}
		return out
	}
	switch {
	case len(current) > 0:
		if slices.Contains(current, slot) {
			return slot
		}
		return current[0]
	case len(have) == 0:
		return slot
	case rolling && d.Rollout.Rolling && d.Rollout.MaxSurge > 0:
		if n := SurgeName(slot, d.Hash); free(n) && !slices.Contains(names(have), n) {
			return n
		}
		if free(slot) && !slices.Contains(names(have), slot) {
			return slot
		}
	}
	if slices.Contains(names(have), slot) {
		return slot
	}
	return have[0].Name
}

// slotState is what Plan knows of the slots of the host's desired pods:
// the other pods of each one's slot (predecessors, by desired key) and
// what becomes of them.
type slotState struct {
	// preds maps a desired pod's key to the other pods of its slot on the
	// host: those it replaces.
	preds map[string][]*ActualPod
	// handled lists the predecessors Plan decided about (deleted now, or
	// kept while their replacement comes up): they are not obsolete.
	handled map[string]bool
	// kept are predecessors kept while their replacement comes up.
	kept []keptOld
}

// keptOld is a predecessor kept while the pod replacing it (next, a key)
// comes up: until is when that one is available, when known, and pending
// whether it is coming up.
type keptOld struct {
	old     *ActualPod
	next    string
	until   time.Time
	pending bool
}

// slots finds the predecessors of desired (bound) pods in actual.
func slots(desired []Pod, actual map[string]*ActualPod) slotState {
	st := slotState{handled: map[string]bool{}}
	bySlot := map[string][]*ActualPod{}
	for _, a := range actual {
		if s, ok := slotOfActual(a); ok {
			k := slotKey(a.Namespace, a.Owner.Name, s)
			bySlot[k] = append(bySlot[k], a)
		}
	}
	if len(bySlot) == 0 {
		return st
	}
	for i := range desired {
		d := &desired[i]
		slot := SlotName(d)
		if slot == "" {
			continue
		}
		var preds []*ActualPod
		for _, a := range bySlot[slotKey(d.Namespace, d.Owner.Name, slot)] {
			if a.Name != d.Name {
				preds = append(preds, a)
			}
		}
		if len(preds) > 0 {
			sort.Slice(preds, func(i, j int) bool { return preds[i].Name < preds[j].Name })
			if st.preds == nil {
				st.preds = map[string][]*ActualPod{}
			}
			st.preds[JoinName(d.Namespace, d.Name)] = preds
		}
	}
	return st
}

// retire deletes predecessor o of desired pod d now.
func (p *planner) retire(o *ActualPod, d *Pod, why string) {
	key := JoinName(o.Namespace, o.Name)
	if p.slots.handled[key] {
		return
	}
	p.slots.handled[key] = true
	p.act(Action{Kind: Delete, Subject: podSubject(o.Namespace, o.Name), Stage: StageRemovePods, Grace: o.GracePeriod,
		Reason: fmt.Sprintf("slot %s: %s %s", SlotName(d), why, d.Name)})
}

// keepOld keeps predecessor o while next, desired, comes up.
func (p *planner) keepOld(o *ActualPod, next *Pod, until time.Time, pending bool) {
	key := JoinName(o.Namespace, o.Name)
	if p.slots.handled[key] {
		return
	}
	p.slots.handled[key] = true
	p.slots.kept = append(p.slots.kept, keptOld{old: o, next: JoinName(next.Namespace, next.Name), until: until, pending: pending})
}

// retireRest deletes, at once, the predecessors no rolling update decided
// about: those of pods that are not rolled out (strategy Recreate, or
// without PlanOptions.RollingUpdates). Those of a pod refused for its
// privileges stay, as the pod itself would.
func (p *planner) retireRest(desired []Pod, refused map[string]bool) {
	for i := range desired {
		d := &desired[i]
		key := JoinName(d.Namespace, d.Name)
		for _, o := range p.slots.preds[key] {
			if refused[key] {
				p.slots.handled[JoinName(o.Namespace, o.Name)] = true
				continue
			}
			p.retire(o, d, "replaced by")
		}
	}
}

// oldAvailable reports whether a predecessor serves: its sandbox is ready,
// its containers run and, when readiness is known, it is Ready. (Its
// template is not the desired one, so available cannot judge it.)
func oldAvailable(a *ActualPod) bool {
	if !a.SandboxReady || a.Hash == "" || !allRunning(a) {
		return false
	}
	return !a.ReadyKnown || a.Ready
}

// surgeCandidate is a slot of a rolling update whose serving pod runs an
// older template: d (bound) replaces olds, the slot's serving pods. With
// inPlace, d is the slot's old pod itself and can only be replaced in
// place.
type surgeCandidate struct {
	d       *Pod
	olds    []*ActualPod
	inPlace bool
}

// surgeGroup paces the rolling update of one Deployment whose pods may
// surge (MaxSurge above 0) or whose slots hold a predecessor. It counts,
// over the Deployment's pods on the host, the slots without a serving pod
// (unavailable) and the pods beyond one a slot (surge), and then takes the
// slots to replace in ordinal order: beside the old pod while the surge
// budget lasts (MaxSurge), else in place while the unavailability budget
// lasts (MaxUnavailable). With the leader's pacing (RolloutAllowed,
// SurgeAllowed) a slot is replaced only as the leader allows. A slot whose
// new pod is available has its old pods deleted; one whose new pod comes
// up keeps them (a Wait says so). Held pods are added to held.
func (p *planner) surgeGroup(pods []*Pod, actual map[string]*ActualPod, held map[string]rolloutWait) {
	r := pods[0].Rollout
	now := p.opts.Now
	var group []string    // slots in progress: their progress moves the held ones on
	var soonest time.Time // when the first pod coming up becomes available
	pending := false
	unavailable, extra := 0, 0
	var cands []surgeCandidate
	for _, d := range pods {
		key := JoinName(d.Namespace, d.Name)
		a := actual[key]
		ok, readyAt, coming := available(d, a, now)
		var live []*ActualPod
		for _, o := range p.slots.preds[key] {
			if oldAvailable(o) {
				live = append(live, o)
			} else {
				p.retire(o, d, "not serving; replaced by")
			}
		}
		switch {
		case a != nil && a.Hash == d.Hash && ok:
			for _, o := range live {
				p.retire(o, d, "replaced by the available")
			}
		case a != nil && a.Hash == d.Hash:
			group = append(group, key)
			pending = pending || coming
			if !readyAt.IsZero() && (soonest.IsZero() || readyAt.Before(soonest)) {
				soonest = readyAt
			}
			if len(live) == 0 {
				unavailable++
			}
			for _, o := range live {
				extra++
				p.keepOld(o, d, readyAt, coming)
			}
		case a != nil && !ok:
			unavailable++ // replaced in place anyway (p.pod)
			group = append(group, key)
			for _, o := range live {
				p.retire(o, d, "an extra pod of the slot of")
			}
		case a != nil:
			for _, o := range live {
				p.retire(o, d, "an extra pod of the slot of")
			}
			if a.Hash != d.Hash {
				cands = append(cands, surgeCandidate{d: d, inPlace: true})
			}
		case len(live) == 0:
			unavailable++ // nothing serves the slot: created at once
			group = append(group, key)
		default:
			cands = append(cands, surgeCandidate{d: d, olds: live})
		}
	}
	surgeLeft := r.MaxSurge - extra
	unavailLeft := r.MaxUnavailable - unavailable
	inPlace, surge := p.opts.RolloutAllowed, p.opts.SurgeAllowed
	paced := inPlace != nil || surge != nil
	slices.SortStableFunc(cands, func(x, y surgeCandidate) int { return x.d.Ordinal - y.d.Ordinal })
	var waiting []surgeCandidate
	for _, c := range cands {
		key := JoinName(c.d.Namespace, c.d.Name)
		slot := JoinName(c.d.Namespace, SlotName(c.d))
		switch {
		case !c.inPlace && surgeLeft > 0 && (!paced || surge[slot]):
			surgeLeft--
			group = append(group, key)
			for _, o := range c.olds {
				p.keepOld(o, c.d, time.Time{}, false) // the new pod is created in this plan
			}
		case unavailLeft > 0 && (!paced || inPlace[slot]):
			unavailLeft--
			group = append(group, key)
			for _, o := range c.olds {
				p.retire(o, c.d, "replaced in place by")
			}
		default:
			waiting = append(waiting, c)
		}
	}
	if len(waiting) == 0 {
		return
	}
	reason := fmt.Sprintf("rolling update of %d replicas (maxUnavailable %d, maxSurge %d): waiting for %s",
		r.Replicas, r.MaxUnavailable, r.MaxSurge, listNames(group, 4))
	if paced {
		reason = "rolling update across hosts: waiting for the leader to allow it (within maxUnavailable and maxSurge for the whole cluster)"
	}
	for _, c := range waiting {
		w := rolloutWait{group: group, reason: reason, until: soonest, pending: pending}
		for _, o := range c.olds {
			p.slots.handled[JoinName(o.Namespace, o.Name)] = true
			w.name = o.Name // the wait names the pod that serves the slot
		}
		held[JoinName(c.d.Namespace, c.d.Name)] = w
	}
}

// surgeWaits adds a wait for each predecessor kept while its replacement
// comes up: due at once when the plan creates or changes the replacement
// (plan again once it is executed), else when the replacement has been
// Ready for minReadySeconds; otherwise its readiness moves it on.
func (p *planner) surgeWaits() {
	if len(p.slots.kept) == 0 {
		return
	}
	acted := map[string]bool{}
	for _, a := range p.res.Actions {
		if a.Subject.Type == SubjectPod || a.Subject.Type == SubjectContainer {
			acted[JoinName(a.Subject.Namespace, a.Subject.Name)] = true
		}
	}
	for _, k := range p.slots.kept {
		until := k.until
		switch {
		case acted[k.next]:
			until = p.opts.Now
			p.res.Continue = true
		case k.pending:
			p.res.Pending = true
		}
		p.wait(podSubject(k.old.Namespace, k.old.Name), until, "maxSurge: serves until its replacement %s is available", k.next)
	}
}

// surging reports whether the rolling update of a Deployment's pods is
// paced by surgeGroup: it may surge, or a slot holds a predecessor.
func (p *planner) surging(pods []*Pod) bool {
	if pods[0].Rollout.MaxSurge > 0 {
		return true
	}
	for _, d := range pods {
		if len(p.slots.preds[JoinName(d.Namespace, d.Name)]) > 0 {
			return true
		}
	}
	return false
}

// createReason is the reason a desired pod the host lacks is created: it
// replaces the other pods of its slot, or it is "not running".
func (p *planner) createReason(d *Pod) string {
	preds := p.slots.preds[JoinName(d.Namespace, d.Name)]
	if len(preds) == 0 {
		return "not running"
	}
	names := make([]string, len(preds))
	for i, o := range preds {
		names[i] = o.Name
	}
	return fmt.Sprintf("replaces %s: %s", strings.Join(names, ", "), changed(preds[0].Hash, d.Hash))
}
