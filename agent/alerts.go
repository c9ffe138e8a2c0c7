package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/workload"
)

// Alert names, as the alertname label carries them.
const (
	AlertCommitRefused = "KelpieCommitRefused"
	AlertSyncFailing   = "KelpieSyncFailing"
	AlertCrashLooping  = "KelpieCrashLooping"
	AlertHostLost      = "KelpieHostLost"
	AlertQuorumLost    = "KelpieQuorumLost"
)

// Alert thresholds.
const (
	failingAfter   = 3 // transient failures in a row before KelpieSyncFailing: one failed fetch is noise
	crashLoopAfter = 3 // restarts in one back-off streak before KelpieCrashLooping
)

// alert is one condition that is wrong now.
type alert struct {
	labels  map[string]string // alertname and what tells this alert apart
	summary string
	detail  string
	cluster bool // a cluster-wide alert: only the leader sends it
}

// key identifies an alert by its labels.
func (al alert) key() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(al.labels)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, al.labels[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// firingAlert is an alert that was sent firing and not yet resolved.
type firingAlert struct {
	alert
	since time.Time
}

// crashLoop is a container that restarts again and again.
type crashLoop struct {
	namespace, pod, container string
	streak, exitCode          int
}

// crashLoops returns the containers that crash-loop: crashLoopAfter
// restarts or more in their back-off streak, and not running since long
// enough for the back-off to reset.
func crashLoops(pods []reconciler.ActualPod, now time.Time) []crashLoop {
	var out []crashLoop
	for _, p := range pods {
		for _, c := range p.Containers {
			if c.Streak < crashLoopAfter {
				continue
			}
			if c.State == reconciler.Running && !c.StartedAt.IsZero() && now.Sub(c.StartedAt) >= workload.BackoffReset {
				continue
			}
			out = append(out, crashLoop{namespace: p.Namespace, pod: p.Name, container: c.Name, streak: c.Streak, exitCode: c.ExitCode})
		}
	}
	return out
}

// currentAlerts is what is wrong now, as this node sees it.
func (a *Agent) currentAlerts() []alert {
	node := a.cfg.Host.Name
	var out []alert
	if p := a.state.Pending; p != nil && p.Error != nil && p.Error.Kind.refusal() {
		out = append(out, alert{
			labels:  map[string]string{"alertname": AlertCommitRefused, "node": node, "commit": p.Short(), "kind": string(p.Error.Kind)},
			summary: fmt.Sprintf("commit %s (%s) refused on %s; the host keeps running the last good commit", p.Short(), firstLineOf(p.Subject), node),
			detail:  p.Error.Message,
		})
	}
	if le := a.state.LastError; le != nil && !le.Kind.refusal() && a.failures >= failingAfter {
		out = append(out, alert{
			labels:  map[string]string{"alertname": AlertSyncFailing, "node": node},
			summary: fmt.Sprintf("sync failing on %s (%s, %d times in a row)", node, le.Kind, a.failures),
			detail:  le.Message,
		})
	}
	for _, c := range a.ops.crash {
		out = append(out, alert{
			labels:  map[string]string{"alertname": AlertCrashLooping, "node": node, "namespace": c.namespace, "pod": c.pod, "container": c.container},
			summary: fmt.Sprintf("container %s of pod %s/%s crash-loops on %s (%d restarts in a row, last exit code %d)", c.container, c.namespace, c.pod, node, c.streak, c.exitCode),
		})
	}
	out = append(out, a.stallAlerts()...)
	if a.cluster != nil && a.cluster.Quorum().OK {
		a.ops.hadQuorum = true // quorum is lost only once it was had: not while the cluster forms
	}
	if a.cluster != nil && a.clusterNotifier() {
		for _, m := range a.cluster.Members() {
			if m.State == gossip.StateDead && !m.Self {
				out = append(out, alert{
					labels:  map[string]string{"alertname": AlertHostLost, "node": m.Name},
					summary: fmt.Sprintf("host %s (%s) is lost to the cluster", m.Name, m.Addr),
					cluster: true,
				})
			}
		}
		if q := a.cluster.Quorum(); !q.OK && a.ops.hadQuorum {
			out = append(out, alert{
				labels:  map[string]string{"alertname": AlertQuorumLost},
				summary: fmt.Sprintf("the cluster lost quorum: %d of %d hosts alive, %d needed", q.Alive, q.Expect, q.Needed),
				detail:  q.Reason,
				cluster: true,
			})
		}
	}
	return out
}

// clusterNotifier reports whether this node sends the cluster-wide
// alerts: the leader, or, while none is known, the alive member first by
// name (so that a minority without a leader still reports lost quorum).
func (a *Agent) clusterNotifier() bool {
	l := a.cluster.Leader()
	if l.Leader != "" {
		return l.Self
	}
	for _, m := range a.cluster.Members() {
		if m.State == gossip.StateAlive && m.Name < a.cluster.Name() {
			return false
		}
	}
	return true
}

// checkAlerts compares what is wrong now with what was sent: a new alert
// is sent firing, one that cleared is sent resolved; one still firing is
// not sent again. A cluster-wide alert this node no longer sends (it lost
// the leadership) is forgotten without a word: the new leader resolves it.
// Without Config.Notify nothing is sent, but the alerts are kept all the
// same for status (the dashboard shows them).
func (a *Agent) checkAlerts() {
	now := a.clock.Now()
	cur := a.currentAlerts()
	seen := make(map[string]bool, len(cur))
	changed := false
	for _, al := range cur {
		k := al.key()
		seen[k] = true
		if _, ok := a.ops.firing[k]; ok {
			continue
		}
		f := &firingAlert{alert: al, since: now}
		a.ops.firing[k] = f
		a.notifyAlert(f, "firing", now)
		changed = true
	}
	notifier := a.cluster == nil || a.clusterNotifier()
	for _, k := range slices.Sorted(maps.Keys(a.ops.firing)) {
		if seen[k] {
			continue
		}
		f := a.ops.firing[k]
		delete(a.ops.firing, k)
		changed = true
		if f.cluster && !notifier {
			continue
		}
		a.notifyAlert(f, "resolved", now)
	}
	if changed {
		firing, recent := a.alertStatuses()
		a.mu.Lock()
		a.status.Alerts, a.status.Notifications = firing, recent
		a.mu.Unlock()
	}
}

// notifyAlert queues one notification of f with status (firing or
// resolved).
func (a *Agent) notifyAlert(f *firingAlert, status string, now time.Time) {
	a.ops.recent = append([]NotificationStatus{{Time: now, Status: status, Alert: f.labels["alertname"], Summary: f.summary, Sent: a.ops.notify != nil}},
		a.ops.recent[:min(len(a.ops.recent), maxRecentNotifications-1)]...)
	if a.ops.notify == nil {
		return
	}
	body, err := json.Marshal(alertPayload(f, status, a.cfg.Host.Name, now))
	if err != nil {
		a.log.Warn("encode a notification", "err", err)
		return
	}
	a.log.Info("notify", "alert", f.labels["alertname"], "status", status, "summary", f.summary)
	a.ops.notify.send(body)
}

// Payload is the JSON body of a notification: Alertmanager's webhook
// shape (version 4, one alert), so that receivers made for Alertmanager
// take it as it is; a top-level Text, so that a Slack (or Mattermost,
// Rocket.Chat) incoming webhook shows it; and Node, the host that sent it.
// It holds no secret: summaries and error messages as status shows them.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []PayloadAlert    `json:"alerts"`
	// Text is one line for chat webhooks.
	Text string `json:"text"`
	// Node is the host that sent the notification.
	Node string `json:"node"`
}

// PayloadAlert is one alert of a Payload, as Alertmanager shapes it.
type PayloadAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// alertPayload builds the notification of f.
func alertPayload(f *firingAlert, status, node string, now time.Time) Payload {
	ann := map[string]string{"summary": f.summary}
	if f.detail != "" {
		ann["description"] = truncate(f.detail, maxHistoryError)
	}
	pa := PayloadAlert{Status: status, Labels: f.labels, Annotations: ann, StartsAt: f.since.UTC(), Fingerprint: fingerprint(f.key())}
	if status == "resolved" {
		pa.EndsAt = now.UTC()
	}
	name := f.labels["alertname"]
	text := fmt.Sprintf("[%s] %s: %s", strings.ToUpper(status), name, f.summary)
	if status == "resolved" {
		text = fmt.Sprintf("[RESOLVED] %s: %s (for %s)", name, f.summary, now.Sub(f.since).Round(time.Second))
	}
	return Payload{
		Version: "4", GroupKey: "kelpie/" + f.key(), Status: status, Receiver: "kelpie",
		GroupLabels: map[string]string{"alertname": name}, CommonLabels: f.labels, CommonAnnotations: ann,
		Alerts: []PayloadAlert{pa}, Text: text, Node: node,
	}
}

// fingerprint is a short stable hash of an alert's key.
func fingerprint(key string) string {
	var h uint64 = 14695981039346656037 // FNV-1a
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return fmt.Sprintf("%016x", h)
}

// firstLineOf is s up to its first newline.
func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// maxRecentNotifications bounds the alerts status keeps that fired or
// resolved.
const maxRecentNotifications = 20

// AlertStatus is an alert that fires now, as status shows it.
type AlertStatus struct {
	// Alert is the alert's name (KelpieCommitRefused…).
	Alert string `json:"alert"`
	// Summary says what is wrong, with no secret in it.
	Summary string `json:"summary"`
	// Since is when this node saw it first.
	Since time.Time `json:"since"`
	// Cluster marks a cluster-wide alert (the leader sends those).
	Cluster bool `json:"cluster,omitempty"`
}

// NotificationStatus is an alert that fired or resolved lately.
type NotificationStatus struct {
	Time time.Time `json:"time"`
	// Status is firing or resolved.
	Status  string `json:"status"`
	Alert   string `json:"alert"`
	Summary string `json:"summary"`
	// Sent is whether it was queued to the --notify URLs (false without
	// any).
	Sent bool `json:"sent"`
}

// alertStatuses are the alerts firing now, the oldest first, and the
// recent notifications, the newest first.
func (a *Agent) alertStatuses() ([]AlertStatus, []NotificationStatus) {
	var firing []AlertStatus
	for _, k := range slices.Sorted(maps.Keys(a.ops.firing)) {
		f := a.ops.firing[k]
		firing = append(firing, AlertStatus{Alert: f.labels["alertname"], Summary: f.summary, Since: f.since, Cluster: f.cluster})
	}
	slices.SortStableFunc(firing, func(x, y AlertStatus) int { return x.Since.Compare(y.Since) })
	return firing, slices.Clone(a.ops.recent)
}
