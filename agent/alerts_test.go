package agent

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/clock/clocktest"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// viewCluster is a Cluster whose view the test sets; alerts read only
// Name, Members, Leader and Quorum.
type viewCluster struct {
	Cluster
	name    string
	members []gossip.Member
	leader  gossip.Leadership
	quorum  gossip.Quorum
}

func (c *viewCluster) Name() string              { return c.name }
func (c *viewCluster) Members() []gossip.Member  { return c.members }
func (c *viewCluster) Leader() gossip.Leadership { return c.leader }
func (c *viewCluster) Quorum() gossip.Quorum     { return c.quorum }
func (c *viewCluster) member(name string) *gossip.Member {
	for i := range c.members {
		if c.members[i].Name == name {
			return &c.members[i]
		}
	}
	return nil
}

// alertAgent is an agent with just what checkAlerts reads, and a
// notifier whose queue the test reads instead of delivering it.
func alertAgent(t *testing.T, cluster Cluster) *Agent {
	cfg := Config{Host: reconciler.Host{Name: "a"}, Notify: []string{"http://127.0.0.1:1/hook"}, Log: testLogger(t)}
	n, err := newNotifier(&cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: cfg, clock: clocktest.New(), log: cfg.Log, ops: operating{notify: n, firing: map[string]*firingAlert{}}}
	if cluster != nil {
		a.cluster = cluster
	}
	a.metrics = newMetrics()
	if a.ops.met, err = registerOpsMetrics(a.metrics.reg, a.cluster); err != nil {
		t.Fatal(err)
	}
	return a
}

// sent takes the notifications queued since the last call, as
// "status alertname label".
func sent(t *testing.T, a *Agent, label string) []string {
	t.Helper()
	var out []string
	for {
		body, ok := a.ops.notify.next()
		if !ok {
			return out
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		al := p.Alerts[0]
		out = append(out, al.Status+" "+al.Labels["alertname"]+" "+al.Labels[label])
	}
}

// TestClusterAlerts: the leader notifies a lost host and lost quorum, and
// their return; a follower does not; a leader that loses the leadership
// forgets its cluster alerts without resolving them.
func TestClusterAlerts(t *testing.T) {
	c := &viewCluster{name: "a",
		members: []gossip.Member{{Name: "a", Self: true, State: gossip.StateAlive}, {Name: "b", State: gossip.StateAlive}, {Name: "c", State: gossip.StateAlive}},
		leader:  gossip.Leadership{Leader: "a", Self: true}, quorum: gossip.Quorum{OK: true, Expect: 3, Alive: 3, Needed: 2}}
	forming := &viewCluster{name: "a", members: c.members[:1], quorum: gossip.Quorum{Expect: 3, Alive: 1, Needed: 2}}
	f := alertAgent(t, forming)
	f.checkAlerts()
	if got := sent(t, f, "node"); len(got) != 0 {
		t.Fatalf("a forming cluster, sent %v", got)
	}

	a := alertAgent(t, c)
	a.checkAlerts()
	if got := sent(t, a, "node"); len(got) != 0 {
		t.Fatalf("all well, sent %v", got)
	}

	c.member("b").State = gossip.StateDead
	c.quorum.Alive = 2
	a.checkAlerts()
	a.checkAlerts() // still lost: not resent
	if got, want := sent(t, a, "node"), []string{"firing KelpieHostLost b"}; !slices.Equal(got, want) {
		t.Fatalf("b lost: sent %v, want %v", got, want)
	}
	c.member("c").State = gossip.StateDead
	c.quorum = gossip.Quorum{OK: false, Expect: 3, Alive: 1, Needed: 2, Reason: "1 of 3 alive"}
	a.checkAlerts()
	if got, want := sent(t, a, "node"), []string{"firing KelpieHostLost c", "firing KelpieQuorumLost "}; !slices.Equal(got, want) {
		t.Fatalf("c lost: sent %v, want %v", got, want)
	}
	c.member("b").State = gossip.StateAlive
	c.quorum = gossip.Quorum{OK: true, Expect: 3, Alive: 2, Needed: 2}
	a.checkAlerts()
	if got, want := sent(t, a, "node"), []string{"resolved KelpieHostLost b", "resolved KelpieQuorumLost "}; !slices.Equal(got, want) {
		t.Fatalf("b back: sent %v, want %v", got, want)
	}

	c.leader = gossip.Leadership{Leader: "b"}
	a.checkAlerts()
	if got := sent(t, a, "node"); len(got) != 0 || len(a.ops.firing) != 0 {
		t.Fatalf("after losing the leadership: sent %v, firing %v", got, a.ops.firing)
	}
	c.member("c").State = gossip.StateAlive
	c.member("b").State = gossip.StateDead
	a.checkAlerts()
	if got := sent(t, a, "node"); len(got) != 0 {
		t.Fatalf("a follower sent %v", got)
	}

	// No leader known: the alive member first by name notifies.
	c.leader = gossip.Leadership{}
	a.checkAlerts()
	if got, want := sent(t, a, "node"), []string{"firing KelpieHostLost b"}; !slices.Equal(got, want) {
		t.Fatalf("no leader, a first by name: sent %v, want %v", got, want)
	}
}

// TestCrashLoopAlert: a container restarting 3 times in its streak fires;
// once it ran long enough for the back-off to reset, it resolves.
func TestCrashLoopAlert(t *testing.T) {
	a := alertAgent(t, nil)
	now := a.clock.Now()
	pod := func(c reconciler.ActualContainer) reconciler.Actual {
		return reconciler.Actual{Pods: []reconciler.ActualPod{{Namespace: "ns", Name: "web-0", Containers: []reconciler.ActualContainer{c}}}}
	}
	steps := []struct {
		c    reconciler.ActualContainer
		want []string
	}{
		{reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: 1, Streak: 2}, nil},
		{reconciler.ActualContainer{Name: "main", State: reconciler.Exited, ExitCode: 1, Streak: 3}, []string{"firing KelpieCrashLooping web-0"}},
		{reconciler.ActualContainer{Name: "main", State: reconciler.Running, Streak: 4, StartedAt: now.Add(-time.Minute)}, nil},
		{reconciler.ActualContainer{Name: "main", State: reconciler.Running, Streak: 4, StartedAt: now.Add(-11 * time.Minute)}, []string{"resolved KelpieCrashLooping web-0"}},
	}
	for i, s := range steps {
		a.observed(pod(s.c), now)
		a.checkAlerts()
		if got := sent(t, a, "pod"); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: sent %v, want %v", i, got, s.want)
		}
	}
}

// TestPayloadShape: the body has Alertmanager's webhook fields and a
// Slack text.
func TestPayloadShape(t *testing.T) {
	since := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	f := &firingAlert{alert: alert{labels: map[string]string{"alertname": AlertSyncFailing, "node": "h1"}, summary: "sync failing on h1", detail: "fetch: refused"}, since: since}
	body, err := json.Marshal(alertPayload(f, "resolved", "h1", since.Add(90*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts", "text"} {
		if _, ok := m[k]; !ok {
			t.Errorf("payload lacks %q: %s", k, body)
		}
	}
	al := m["alerts"].([]any)[0].(map[string]any)
	if m["version"] != "4" || m["status"] != "resolved" || al["status"] != "resolved" || al["startsAt"] != "2026-05-06T07:08:09Z" || al["endsAt"] != "2026-05-06T07:09:39Z" {
		t.Errorf("payload: %s", body)
	}
	if m["text"] != "[RESOLVED] KelpieSyncFailing: sync failing on h1 (for 1m30s)" {
		t.Errorf("text %q", m["text"])
	}
}
