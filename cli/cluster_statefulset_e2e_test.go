package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// clusterStatefulDB is a StatefulSet db of three (OrderedReady) with a
// claim per ordinal, governed by the headless Service db. On its first
// start each pod writes its name and the VERSION it first ran with to its
// claim (only when absent: a later version finds it there) and serves the
// claim over HTTP on 8080; it is Ready once httpd answers.
func clusterStatefulDB(version string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: db, namespace: %[1]s}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: %[1]s}
spec:
  replicas: 3
  serviceName: db
  podManagementPolicy: OrderedReady
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.36
        command: ["sh", "-c", "[ -f /data/index.html ] || echo \"$(hostname) first=$VERSION\" > /data/index.html; exec httpd -f -p 8080 -h /data"]
        env: [{name: VERSION, value: %[2]q}]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
          failureThreshold: 1
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Mi}}}
`, clusterE2EKubeNS, version)
}

// clusterSTSFetch is run in a db pod by `kelpie exec`: for each name it
// resolves it as a resolver does with the pod's resolv.conf (its
// nameserver, the cluster DNS, and its search path, which ndots:5 tries
// first for these names) and prints "NAME ADDRESS ANSWER", the answer being
// the last line of what the pod at that address serves. busybox nslookup
// applies the search path only to names without a dot, so the script
// walks it itself; busybox wget crashes in the image (see
// servicesE2EClient): nc speaks HTTP.
const clusterSTSFetch = `search=$(awk '$1 == "search" {$1 = ""; print}' /etc/resolv.conf)
for n in "$@"; do
  for d in $search ""; do
    out=$(nslookup -type=a "$n${d:+.$d}" 2>&1)
    ip=$(echo "$out" | awk '/^Address/ && $2 !~ /:/ {a=$2} END {print a}')
    [ -n "$ip" ] && break
  done
  if [ -z "$ip" ]; then
    echo "$n - nslookup:" $out
    continue
  fi
  body=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc -w 1 "$ip" 8080 2>&1 | tr -d '\r' | tail -n 1)
  echo "$n $ip ${body:--}"
done`

// stsContainer is the container main of a db pod as one host's containerd
// holds it.
type stsContainer struct {
	host    string
	version string // its VERSION
	created time.Time
	running bool
	pid     uint32 // its task's, 0 without one
}

// stsContainers reads the containers main of the db pods from host h's
// containerd namespace, by pod name.
func (h *clusterHost) stsContainers() map[string]stsContainer {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), h.ctrNS), 30*time.Second)
	defer cancel()
	out := map[string]stsContainer{}
	ctrs, err := h.c.cd.Containers(ctx)
	if err != nil {
		h.c.t.Logf("%s: list containers: %v", h.name, err)
		return out
	}
	for _, ctr := range ctrs {
		info, err := ctr.Info(ctx)
		if err != nil || info.Labels[reconciler.LabelContainer] != "main" {
			continue
		}
		ns, name, _ := strings.Cut(info.Labels[reconciler.LabelPod], "/")
		if ns != clusterE2EKubeNS || !strings.HasPrefix(name, "db-") {
			continue
		}
		sc := stsContainer{host: h.name, created: info.CreatedAt}
		if spec, err := ctr.Spec(ctx); err == nil && spec.Process != nil {
			for _, kv := range spec.Process.Env {
				if v, ok := strings.CutPrefix(kv, "VERSION="); ok {
					sc.version = v
				}
			}
		}
		if task, err := ctr.Task(ctx, nil); err == nil {
			sc.pid = task.Pid()
			if st, err := task.Status(ctx); err == nil && st.Status == containerd.Running {
				sc.running = true
			}
		}
		out[name] = sc
	}
	return out
}

// stsPodStatus finds the db pod name in the status of the hosts of a view.
func stsPodStatus(v view, name string) (agent.PodStatus, string, bool) {
	for host, s := range v.status {
		for _, p := range s.Pods {
			if p.Namespace == clusterE2EKubeNS && p.Name == name {
				return p, host, true
			}
		}
	}
	return agent.PodStatus{}, "", false
}

// TestClusterStatefulSetEndToEnd runs a StatefulSet db of three with a
// claim per ordinal on three hosts (real agents, containerd, CNI, git and
// nftables, in network namespaces): its pods start in ordinal order, each
// created only once the one before is Ready, one on each host; from inside
// a db pod each stable name db-N.db resolves through the cluster DNS to
// that pod, which answers with its name; a rolling update replaces them
// from the highest ordinal down, each once the one above is Ready again,
// and each keeps on its claim what its first version wrote. Then the host
// of db-1 goes away, its agent alone first and then the whole host: db-1
// is bound to its claim there, so it waits for the host (the placement
// keeps it there; no other host starts it, even past --reschedule-after).
// The agent alone, restarted, keeps db-1 running; the host, back, runs
// db-1 again with its data, answering by its name.
func TestClusterStatefulSetEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end cluster test: not in -short")
	}
	testenv.Binary(t, "nft", "nftables")
	testenv.Binary(t, "busybox", "busybox-static")
	c := newClusterE2E(t)
	repo := testenv.NewGitRepo(t)
	repo.Git("init", "-q", "--bare", "-b", "main", c.bare)
	v1 := c.push(repo, "v1: db", clusterStatefulDB("v1"))
	a, b, cc := c.addHost(0), c.addHost(1), c.addHost(2)
	all := []*clusterHost{a, b, cc}
	hostByName := map[string]*clusterHost{a.name: a, b.name: b, cc.name: cc}
	names := []string{"db-0", "db-1", "db-2"}
	begin := time.Now()
	for _, h := range all {
		h.start()
	}

	// containers reads the db containers of hosts.
	containers := func(hosts ...*clusterHost) map[string][]stsContainer {
		out := map[string][]stsContainer{}
		for _, h := range hosts {
			for name, sc := range h.stsContainers() {
				out[name] = append(out[name], sc)
			}
		}
		return out
	}
	// settled reports whether every db pod runs and is Ready on exactly one
	// host of hosts, with VERSION version, and those hosts applied commit.
	settled := func(v view, commit, version string, hosts []*clusterHost) bool {
		if len(v.status) != len(hosts) {
			return false
		}
		for _, s := range v.status {
			if s.Applied == nil || s.Applied.Hash != commit {
				return false
			}
		}
		ctrs := containers(hosts...)
		for _, n := range names {
			p, host, ok := stsPodStatus(v, n)
			if !ok || p.State != "Running" || !p.PodReady || len(ctrs[n]) != 1 || ctrs[n][0].host != host || !ctrs[n][0].running || ctrs[n][0].version != version {
				return false
			}
		}
		return true
	}

	// (1) Ordered start, one pod on each host.
	v := c.waitView("db-0, db-1 and db-2 Ready", 2*time.Minute, all, func(v view) bool {
		return settled(v, v1, "v1", all) && v.membersAlive(a.name, b.name, cc.name)
	})
	hostOf := map[string]*clusterHost{}
	ctrs := containers(all...)
	for i, n := range names {
		_, host, _ := stsPodStatus(v, n)
		hostOf[n] = hostByName[host]
		if i == 0 {
			continue
		}
		// The container of db-i was created after db-(i-1) became Ready
		// (ReadySince, as its host's agent saw it; one clock: one machine).
		prev, _, _ := stsPodStatus(v, names[i-1])
		if created := ctrs[n][0].created; !created.After(prev.ReadySince) {
			t.Errorf("%s was created at %s, before %s was Ready (at %s)", n, created.Format(time.StampMicro), names[i-1], prev.ReadySince.Format(time.StampMicro))
		} else {
			t.Logf("%s (on %s) created %.2fs after %s was Ready", n, host, created.Sub(prev.ReadySince).Seconds(), names[i-1])
		}
	}
	if hostOf["db-0"] == hostOf["db-1"] || hostOf["db-1"] == hostOf["db-2"] || hostOf["db-0"] == hostOf["db-2"] {
		t.Fatalf("the db pods are not one on each host: db-0 on %s, db-1 on %s, db-2 on %s\n%s", hostOf["db-0"].name, hostOf["db-1"].name, hostOf["db-2"].name, v.describe())
	}
	t.Logf("(1) db-0 on %s, db-1 on %s, db-2 on %s, all Ready %.1fs after the agents started",
		hostOf["db-0"].name, hostOf["db-1"].name, hostOf["db-2"].name, time.Since(begin).Seconds())

	// fetch resolves and fetches the stable names of pods from inside pod
	// from (through its host's agent): what each answered, by pod, and the
	// exec's output.
	fetch := func(from string, pods ...string) (map[string]string, string) {
		h := hostOf[from]
		args := []string{"exec", "--agent", fmt.Sprintf("http://%s:%d", h.ip, clusterE2EListen), "--api-token", e2eAPIToken,
			clusterE2EKubeNS + "/" + from, "--", "sh", "-c", clusterSTSFetch, "fetch"}
		for _, p := range pods {
			args = append(args, p+".db")
		}
		cmd := exec.Command(c.bin, args...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(&out, "kelpie exec: %v", err)
		}
		got := map[string]string{}
		for _, line := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(line); len(f) >= 3 {
				got[strings.TrimSuffix(f[0], ".db")] = strings.Join(f[1:], " ")
			}
		}
		return got, out.String()
	}
	// answers waits until the stable name of each of pods answers, from
	// inside pod from, with the address its pod has and want(pod).
	answers := func(what, from string, want func(pod string) string, pods ...string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			v := c.snapshot(all...)
			got, out := fetch(from, pods...)
			ok := true
			var wants []string
			for _, n := range pods {
				p, _, _ := stsPodStatus(v, n)
				w := p.IP + " " + want(n)
				wants = append(wants, n+".db "+w)
				ok = ok && p.IP != "" && got[n] == w
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: from inside %s the stable names answered:\n%s\nwant %q\n%s", what, from, out, wants, c.logs())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	firstV1 := func(n string) string { return n + " first=v1" }

	// (2) Stable names, from a pod on one host to the pods of all three.
	answers("stable names after the start", "db-0", firstV1, names...)
	t.Logf("(2) db-0.db, db-1.db and db-2.db answer from inside db-0")

	// (3) Rolling update: highest ordinal first, each created once the one
	// above runs v2 and is Ready; the claims keep what v1 wrote.
	start := time.Now()
	v2 := c.push(repo, "v2: db", clusterStatefulDB("v2"))
	v = c.waitView("db rolled out to v2", 2*time.Minute, all, func(v view) bool { return settled(v, v2, "v2", all) })
	ctrs = containers(all...)
	order := slices.Clone(names)
	slices.SortFunc(order, func(x, y string) int { return ctrs[x][0].created.Compare(ctrs[y][0].created) })
	if !slices.Equal(order, []string{"db-2", "db-1", "db-0"}) {
		t.Errorf("v2 was created in the order %v, want db-2, db-1, db-0", order)
	}
	for i := 0; i+1 < len(names); i++ {
		lower, upper := names[i], names[i+1]
		up, _, _ := stsPodStatus(v, upper)
		if created := ctrs[lower][0].created; !created.After(up.ReadySince) {
			t.Errorf("v2 of %s was created at %s, before v2 of %s was Ready (at %s)", lower, created.Format(time.StampMicro), upper, up.ReadySince.Format(time.StampMicro))
		}
	}
	for _, n := range names {
		if h := hostByName[ctrs[n][0].host]; h != hostOf[n] {
			t.Errorf("v2 of %s runs on %s, v1 ran on %s: it left its claim", n, h.name, hostOf[n].name)
		}
	}
	answers("stable names after the update", "db-0", firstV1, names...)
	t.Logf("(3) rolled out to v2 in the order %v in %.1fs; each claim kept what v1 wrote", order, time.Since(start).Seconds())

	// (4) The host of db-1 goes away: first its agent only (SIGKILL; the
	// pods run on), then the whole host. Each time db-1 waits for it: the
	// leader keeps it placed there and no survivor starts it.
	victim := hostOf["db-1"]
	var survivors []*clusterHost
	for _, h := range all {
		if h != victim {
			survivors = append(survivors, h)
		}
	}
	from := "db-0"
	if hostOf[from] == victim {
		from = "db-2"
	}
	// waitDB1Waits waits until the survivors see the victim dead and the
	// placement in force still gives it db-1 (it reports db-1 nowhere as
	// unplaceable), holding for at least hold after they saw it dead: the
	// leader places again within milliseconds of a death. It fails at once
	// if a survivor runs db-1.
	waitDB1Waits := func(what string, start time.Time, hold time.Duration) view {
		t.Helper()
		var deadAt time.Time
		v := c.waitView(what, time.Minute, survivors, func(v view) bool {
			for host, pods := range v.running {
				if slices.Contains(pods, clusterE2EKubeNS+"/db-1") {
					t.Fatalf("db-1 runs on %s %.1fs after %s went away, away from its claim\n%s", host, time.Since(start).Seconds(), victim.name, v.describe())
				}
			}
			if len(v.status) != len(survivors) {
				return false
			}
			if deadAt.IsZero() && v.seesDead(victim.name) {
				deadAt = time.Now()
			}
			for _, s := range v.status {
				if s.Cluster == nil || s.Cluster.Placement == nil {
					return false
				}
				for _, u := range s.Cluster.Placement.Unplaceable {
					if strings.HasPrefix(u, clusterE2EKubeNS+"/db-1:") {
						t.Fatalf("db-1 reported unplaceable %.1fs after %s went away: %q; want it kept placed there, waiting\n%s", time.Since(start).Seconds(), victim.name, u, v.describe())
					}
				}
				placed := false
				for _, m := range s.Cluster.Members {
					placed = placed || (m.Name == victim.name && slices.Contains(m.Pods, clusterE2EKubeNS+"/db-1"))
				}
				if !placed {
					return false
				}
			}
			return !deadAt.IsZero() && time.Since(deadAt) > hold
		})
		t.Logf("(4) %s seen dead %.1fs after the kill; db-1 still placed there %.1fs later", victim.name, deadAt.Sub(start).Seconds(), time.Since(deadAt).Seconds())
		return v
	}

	// (4a) The agent alone: restarted once seen dead, it keeps db-1
	// running (the same task), as the placement still gives it db-1.
	before := victim.stsContainers()["db-1"]
	start = time.Now()
	victim.kill()
	waitDB1Waits("db-1 waiting for the agent of its host", start, time.Second)
	victim.start()
	c.waitView("the restarted agent to run db-1 again", time.Minute, all, func(v view) bool {
		_, host, _ := stsPodStatus(v, "db-1")
		return v.membersAlive(a.name, b.name, cc.name) && settled(v, v2, "v2", all) && host == victim.name
	})
	if after := victim.stsContainers()["db-1"]; after.pid != before.pid || !after.created.Equal(before.created) {
		t.Errorf("the agent of %s, restarted once seen dead, replaced db-1: task %d created %s, was task %d created %s\n%s",
			victim.name, after.pid, after.created.Format(time.StampMicro), before.pid, before.created.Format(time.StampMicro), victim.log.String())
	}
	t.Logf("(4a) the agent of %s restarted %.1fs after its kill: db-1 kept running (task %d)", victim.name, time.Since(start).Seconds(), before.pid)

	// (4b) The whole host: still waiting past --reschedule-after (5s),
	// when a replica without a claim moves.
	start = time.Now()
	victim.kill()
	n := victim.killTasks()
	victim.unplug()
	m := victim.loseMounts()
	t.Logf("(4b) host %s lost: agent SIGKILLed, %d tasks killed, network namespace deleted, %d pod network namespaces unmounted", victim.name, n, m)
	const rescheduleAfter = 5 * time.Second // the cluster rig's --reschedule-after
	v = waitDB1Waits("db-1 waiting for its host past --reschedule-after", start, rescheduleAfter+time.Second)
	// The other pods keep running on the survivors, and answer.
	others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return hostOf[n] == victim })
	for _, n := range others {
		if !slices.Contains(v.running[hostOf[n].name], clusterE2EKubeNS+"/"+n) {
			t.Errorf("%s stopped on %s while db-1 waits for its host\n%s", n, hostOf[n].name, v.describe())
		}
	}
	answers("the other stable names while db-1 waits", from, firstV1, others...)

	// (5) The host comes back (a new agent process, the same state dir):
	// db-1 runs there again, with its data, and answers by its name.
	start = time.Now()
	victim.plug()
	victim.start()
	c.waitView("db-1 back on its host", 2*time.Minute, all, func(v view) bool {
		_, host, _ := stsPodStatus(v, "db-1")
		return v.membersAlive(a.name, b.name, cc.name) && settled(v, v2, "v2", all) && host == victim.name
	})
	answers("stable names after the host came back", from, firstV1, names...)
	b1, err := os.ReadFile(filepath.Join(victim.stateDir, statedir.Claims, statedir.Key(clusterE2EKubeNS, "data-db-1"), "data", "index.html"))
	if err != nil || strings.TrimSpace(string(b1)) != "db-1 first=v1" {
		t.Errorf("claim data-db-1 on %s: %q, %v; want what v1 wrote", victim.name, b1, err)
	}
	t.Logf("(5) %s back: db-1 runs there again with its data %.1fs after the restart; the test took %.1fs", victim.name, time.Since(start).Seconds(), time.Since(begin).Seconds())
}
