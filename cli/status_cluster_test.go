package cli

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
)

// TestStatusCluster prints the cluster part of a clustered agent's status.
func TestStatusCluster(t *testing.T) {
	clearEnv(t)
	s := sampleStatus()
	s.Cluster = &agent.ClusterStatus{
		Self: "h1", Leader: "h1", Term: 4,
		Quorum:    agent.QuorumStatus{OK: false, Expect: 3, Alive: 1, Needed: 2, Reason: "no quorum: 1 of 3 expected members alive, 2 needed; the last placement stays in force"},
		Guarantee: "no quorum: the last placement stays in force and nothing is moved until enough members are back",
		Placement: &agent.PlacementStatus{Term: 4, Seq: 2, Leader: "h1", Commit: strings.Repeat("a", 40), Replicas: 3,
			Unplaceable: []string{"default/db-0: volume claim default/data is on node h3, which is dead"}},
		Members: []agent.MemberStatus{
			{Name: "h1", Addr: "10.0.0.1:7946", State: "alive", Leader: true, Commit: strings.Repeat("a", 40), PodsRunning: 2, Pods: []string{"default/web-0", "default/web-1"}, PodRange: "10.244.0.0/24"},
			{Name: "h3", Addr: "10.0.0.3:7946", State: "dead", Since: time.Now().Add(-90 * time.Second), Pods: []string{}},
		},
	}
	s.PodRange = "10.244.0.0/24"
	s.LastSync = &agent.SyncInfo{Seq: 4, Time: time.Now(), Reason: "poll", Result: "ok", Source: "/srv/mirror/site.git",
		Skipped: []string{"https://git.example.com/site.git: dial tcp: connection refused"}}
	srv := httptest.NewServer(&fakeAgent{status: s})
	defer srv.Close()
	res := runMain(t, "status", "--agent", srv.URL)
	if res.code != 0 {
		t.Fatalf("status: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{
		"Fetched:   from /srv/mirror/site.git; passed over:\n  ! https://git.example.com/site.git: dial tcp: connection refused",
		"Pod range: 10.244.0.0/24\n",
		"Cluster:   leader h1 (this node), term 4",
		"Quorum:    no quorum: 1 of 3 expected members alive, 2 needed",
		"Placement: 4.2 by h1, commit aaaaaaaaaaaa, 3 replicas",
		"unplaceable: default/db-0: volume claim default/data is on node h3, which is dead",
		"h1*     10.0.0.1:7946  alive        10.244.0.0/24  aaaaaaaaaaaa  2        default/web-0,default/web-1",
		"h3      10.0.0.3:7946  dead 1m ago  -              -             0        -",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, res.stdout)
		}
	}
}

// TestKeygen: keygen makes distinct 32-byte keys; --mirror derives the
// peer-sync token the agents of that cluster accept.
func TestKeygen(t *testing.T) {
	clearEnv(t)
	a, b := runMain(t, "keygen"), runMain(t, "keygen")
	if a.code != 0 || b.code != 0 || a.stdout == b.stdout {
		t.Fatalf("keygen: %d %q, %d %q", a.code, a.stdout, b.code, b.stdout)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.stdout))
	if err != nil || len(raw) != 32 {
		t.Fatalf("keygen printed %q: %d bytes, %v", a.stdout, len(raw), err)
	}
	res := runMain(t, "keygen", "--mirror", "--gossip-key", strings.TrimSpace(a.stdout))
	if want := agent.MirrorTokenFromKey(raw) + "\n"; res.code != 0 || res.stdout != want {
		t.Errorf("keygen --mirror: exit %d %q, want %q", res.code, res.stdout, want)
	}
	if res := runMain(t, "keygen", "--mirror"); res.code != 1 || !strings.Contains(res.stderr, "--gossip-key") {
		t.Errorf("keygen --mirror without a key: exit %d %s", res.code, res.stderr)
	}
}
