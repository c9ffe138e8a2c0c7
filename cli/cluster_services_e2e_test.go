package cli

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// servicesE2EManifest is a Deployment of three pods that answer HTTP on
// 8080 with their own name, a NodePort Service web in front of them, and a
// headless Service web-pods over the same pods.
const servicesE2EManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: clustertest}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.36
        command: ["sh", "-c", "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]
        ports:
        - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: clustertest}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
---
apiVersion: v1
kind: Service
metadata: {name: web-pods, namespace: clustertest}
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: http, port: 8080}
`

// TestClusterServicesEndToEnd runs three agents in network namespaces
// (real containerd, CNI and nftables) with a Service over one pod on each
// host. The third host shares no link with the other two (it sits behind a
// router), so the hosts route its pods through VXLAN (auto mode) and each
// other's with host-gw. A client pod on the first host fetches
// http://web 200 times by name (the cluster DNS on its pod gateway and the
// search path of its resolv.conf) and gets answers from the pods of all
// three hosts; a pod on the far host reaches the others' pods and the
// Service's virtual IP; the cluster DNS resolves the Service's name to its
// virtual IP and the headless Service's to the three pods; the node port
// answers on every host's address. Then the far host dies (agent
// SIGKILLed, containers killed, network namespace deleted) while the client
// keeps fetching: the failed requests stop, and the test reports how many
// there were, over what time, and when the survivors saw the host dead.
func TestClusterServicesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end cluster test: not in -short")
	}
	testenv.Binary(t, "nft", "nftables")
	testenv.Binary(t, "busybox", "busybox-static")
	testenv.Binary(t, "sysctl", "procps")
	c := newClusterE2E(t)
	repo := testenv.NewGitRepo(t)
	repo.Git("init", "-q", "--bare", "-b", "main", c.bare)
	c.push(repo, "v1: web and a client", servicesE2EManifest+servicesE2EClient)
	a, b, cc := c.addHost(0), c.addHost(1), c.addHost(2)
	c.putBehindRouter(cc, a, b)
	all := []*clusterHost{a, b, cc}
	begin := time.Now()
	for _, h := range all {
		h.start()
	}

	// Every host resolves web to three endpoints and has programmed them;
	// the client runs on a.
	var web agent.ServiceStatus
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ok := true
		for _, h := range all {
			s, up := h.status()
			sv, found := findService(s, "web")
			hp, _ := findService(s, "web-pods")
			if !up || !found || sv.ClusterIP == "" || sv.Endpoints != 3 || hp.Endpoints != 3 || !strings.HasPrefix(s.DataPath, "programmed") || !strings.HasPrefix(s.DNS, "listening") {
				ok = false
				break
			}
			web = sv
		}
		if ok && clientLog(a) != "" {
			break
		}
		if time.Now().After(deadline) {
			for _, h := range all {
				s, _ := h.status()
				t.Logf("%s: services %+v, data path %q, DNS %q, pods %+v", h.name, s.Services, s.DataPath, s.DNS, s.Pods)
			}
			t.Fatalf("web did not get three endpoints on every host, or the client did not start on %s\n%s", a.name, c.logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("web: VIP %s, ports %+v; three endpoints on every host %.1fs after the agents started", web.ClusterIP, web.Ports, time.Since(begin).Seconds())

	// Routes: host-gw between a and b, VXLAN to and from the far host.
	routes := c.waitRoutes(all, func(from, to string) string {
		if from == cc.name || to == cc.name {
			return "vxlan"
		}
		return "host-gw"
	})
	for _, h := range all {
		t.Logf("%s routes %q", h.name, routes[h.name])
	}

	// The web pods: one on each host.
	hostOf := map[string]string{} // web pod name -> host name
	webIP := map[string]string{}  // host name -> its web pod's address
	webPod := map[string]string{} // host name -> its web pod's name
	for _, h := range all {
		s := h.statusOK(t)
		for _, p := range s.Pods {
			if strings.HasPrefix(p.Name, "web-") {
				hostOf[p.Name] = h.name
				webIP[h.name], webPod[h.name] = p.IP, p.Name
			}
		}
	}
	if len(webIP) != 3 || len(hostOf) != 3 {
		t.Fatalf("the web pods are not one on each host: %v", hostOf)
	}

	// From the web pod on the far host, through VXLAN: the other hosts'
	// pods and the VIP, which answers from the pods of all three hosts.
	farNetns := podNetnsOf(t, cc, webPod[cc.name])
	for _, h := range []*clusterHost{a, b} {
		body, err := httpGetIn(farNetns, webIP[h.name]+":8080")
		if err != nil || strings.TrimSpace(body) != webPod[h.name] {
			t.Errorf("GET http://%s:8080/ (%s's pod) from a pod on the far host %s: %q, %v", webIP[h.name], h.name, cc.name, body, err)
		}
	}
	var farAnswers []string
	for range 30 {
		body, err := httpGetIn(farNetns, web.ClusterIP+":80")
		if err != nil {
			t.Fatalf("GET http://%s/ from a pod on the far host %s: %v", web.ClusterIP, cc.name, err)
		}
		farAnswers = append(farAnswers, hostOf[strings.TrimSpace(body)])
	}
	t.Logf("30 requests to the VIP from a pod on the far host %s, answers by host: %s", cc.name, countBy(farAnswers))
	for _, h := range all {
		if !slices.Contains(farAnswers, h.name) {
			t.Errorf("30 requests to the VIP from %s were answered by hosts %s; want all three", cc.name, countBy(farAnswers))
			break
		}
	}

	// The client on a: 200 requests to http://web, from the first it
	// makes after now, all answered, by the pods of all three hosts.
	logPath := clientLog(a)
	reqs, err := readClientLog(logPath)
	if err != nil {
		t.Fatal(err)
	}
	from := len(reqs)
	startedAt := time.Now()
	testenv.Eventually(t, 2*time.Minute, "the client to make 200 requests", func() bool {
		reqs, err = readClientLog(logPath)
		return err != nil || len(reqs) >= from+200
	})
	if err != nil {
		t.Fatal(err)
	}
	var byHost []string
	var failed []clientRequest
	for _, r := range reqs[from : from+200] {
		if r.addr != web.ClusterIP {
			t.Errorf("request %d: web resolved to %s in the client pod, want the VIP %s", r.seq, r.addr, web.ClusterIP)
		}
		if !r.ok {
			failed = append(failed, r)
			continue
		}
		h := hostOf[r.answer]
		if h == "" {
			h = "unknown pod " + r.answer
		}
		byHost = append(byHost, h)
	}
	span := reqs[from+199].end - reqs[from].start
	t.Logf("the client on %s fetched http://web 200 times in %.1fs (%.0f ms each, wall %.1fs): answers by host %s; %d failed",
		a.name, span, span*1000/200, time.Since(startedAt).Seconds(), countBy(byHost), len(failed))
	if len(failed) > 0 {
		t.Errorf("%d of 200 requests to http://web failed, the first: %+v", len(failed), failed[0])
	}
	for _, h := range all {
		if !slices.Contains(byHost, h.name) {
			t.Errorf("no request to http://web was answered by the pod on %s: %s", h.name, countBy(byHost))
		}
	}

	// The cluster DNS on a's pod gateway: the Service's name is its VIP,
	// the headless Service's the three pods.
	netns := podNetnsOf(t, a, webPod[a.name])
	s := a.statusOK(t)
	gw := strings.TrimSuffix(s.DNS, ":53")
	gw = strings.TrimPrefix(gw, "listening on ")
	for _, q := range []struct{ name, want string }{
		{"web.clustertest.svc.cluster.local", web.ClusterIP},
		{"web.clustertest", web.ClusterIP},
	} {
		out, err := exec.Command("nsenter", "--net="+netns, "busybox", "nslookup", q.name, gw).CombinedOutput()
		if err != nil || !strings.Contains(string(out), q.want) {
			t.Errorf("nslookup %s %s from a pod: %v\n%s\nwant %s", q.name, gw, err, out, q.want)
		}
	}
	out, err := exec.Command("nsenter", "--net="+netns, "busybox", "nslookup", "web-pods.clustertest.svc.cluster.local", gw).CombinedOutput()
	for _, ip := range webIP {
		if err != nil || !strings.Contains(string(out), ip) {
			t.Errorf("nslookup of the headless web-pods lacks %s: %v\n%s", ip, err, out)
		}
	}
	// The pods' resolv.conf names that server and the search path.
	rc := podResolvConf(t, a)
	if !strings.Contains(rc, "nameserver "+gw) || !strings.Contains(rc, "search clustertest.svc.cluster.local svc.cluster.local cluster.local") || !strings.Contains(rc, "ndots:5") {
		t.Errorf("a pod's resolv.conf on %s:\n%s", a.name, rc)
	}

	// The node port answers on every host's address, from outside, ten
	// times in a row once it answered (whichever pod the host picks).
	client := &http.Client{Timeout: 3 * time.Second}
	for _, h := range all {
		url := fmt.Sprintf("http://%s:%d/", h.ip, web.Ports[0].NodePort)
		get := func() (string, error) {
			resp, err := client.Get(url)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("%s: %s", resp.Status, body)
			}
			return strings.TrimSpace(string(body)), nil
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := get()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node port %s does not answer: %v", url, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		var answers []string
		for range 10 {
			body, err := get()
			if err != nil {
				t.Errorf("node port %s: %v", url, err)
				break
			}
			answers = append(answers, hostOf[body])
		}
		t.Logf("node port %s answered from the pods of hosts %s", url, countBy(answers))
	}

	c.servicesHostLoss(a, b, cc, webIP[cc.name], logPath, hostOf)
}

// servicesHostLoss kills the far host as hosts die (its agent SIGKILLed,
// its containers killed, its network namespace deleted) while the client
// on a keeps fetching http://web, and waits until the survivors see it
// dead, the web Service has three endpoints again, none of them the dead
// host's pod at victimIP (it was replaced on a survivor), and the client's
// last 50 requests, all begun after that, succeeded. It reports
// the failed requests after the kill (how many, over what time) and when
// the survivors saw the host dead, and fails when the failures do not stop.
func (c *clusterE2E) servicesHostLoss(a, b, victim *clusterHost, victimIP, logPath string, hostOf map[string]string) {
	t := c.t
	t.Helper()
	survivors := []*clusterHost{a, b}
	before, err := readClientLog(logPath)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	up0 := uptime(t)
	victim.kill()
	n := victim.killTasks()
	victim.unplug()
	t.Logf("host %s lost: agent SIGKILLed, %d tasks killed, network namespace deleted (%.2fs)", victim.name, n, time.Since(start).Seconds())

	const calm = 50 // requests in a row that must succeed at the end
	var dead, replaced time.Duration
	var after []clientRequest
	deadline := time.Now().Add(3 * time.Minute)
	for {
		now := time.Since(start)
		if dead == 0 && c.snapshot(survivors...).seesDead(victim.name) {
			dead = now
		}
		if dead != 0 && replaced == 0 {
			ok := true
			for _, h := range survivors {
				s, up := h.status()
				sv, _ := findService(s, "web")
				ok = ok && up && sv.Endpoints == 3 && len(sv.Ports) > 0
				for _, p := range sv.Ports {
					for _, e := range p.Endpoints {
						ok = ok && !strings.HasPrefix(e, victimIP+":")
					}
				}
			}
			if ok {
				replaced = now
			}
		}
		reqs, err := readClientLog(logPath)
		if err != nil {
			t.Fatal(err)
		}
		after = reqs[len(before):]
		if replaced != 0 && len(after) > calm && !slices.ContainsFunc(after[len(after)-calm:], func(r clientRequest) bool { return !r.ok }) {
			// The last calm requests began after the endpoints were
			// whole again.
			if after[len(after)-calm].start > up0+replaced.Seconds() {
				break
			}
		}
		if time.Now().After(deadline) {
			var tail []string
			for _, r := range after[max(0, len(after)-20):] {
				tail = append(tail, fmt.Sprintf("%+v", r))
			}
			t.Fatalf("after the loss of %s the client's requests did not stop failing within 3 minutes (seen dead after %s, endpoints whole after %s); its last requests:\n%s\n%s",
				victim.name, dead, replaced, strings.Join(tail, "\n"), c.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The pods now: the replacement takes the lost replica's name (web-N)
	// on a survivor.
	hostNow := map[string]string{}
	for _, h := range survivors {
		st, _ := h.status()
		for _, p := range st.Pods {
			if strings.HasPrefix(p.Name, "web-") {
				hostNow[p.Name] = h.name
			}
		}
	}
	first, last := -1, -1
	for i, r := range after {
		if !r.ok {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	// Answers by host: before the pods were whole again by the hosts
	// before the loss, after it by the hosts now.
	var answers []string
	for _, r := range after {
		if r.ok && r.start < up0+replaced.Seconds() {
			answers = append(answers, hostOf[r.answer])
		} else if r.ok {
			answers = append(answers, hostNow[r.answer])
		}
	}
	span := after[len(after)-1].end - up0
	if first < 0 {
		t.Logf("HOSTLOSS no request failed after the loss of %s (%d requests over %.1fs); seen dead by the survivors %.2fs, web whole again %.2fs after the kill; answers by host %s",
			victim.name, len(after), span, dead.Seconds(), replaced.Seconds(), countBy(answers))
	} else {
		fails := 0
		for _, r := range after[first : last+1] {
			if !r.ok {
				fails++
			}
		}
		t.Logf("HOSTLOSS after the loss of %s: %d of %d requests failed, the first ending %.2fs and the last %.2fs after the kill (it began %.2fs after; %.2fs from first to last, %d succeeded in between); seen dead by the survivors %.2fs, web whole again %.2fs after the kill; answers after the kill by host: %s",
			victim.name, fails, len(after), after[first].end-up0, after[last].end-up0, after[last].start-up0, after[last].end-after[first].end, last-first+1-fails, dead.Seconds(), replaced.Seconds(), countBy(answers))
	}
	for _, r := range after[len(after)-calm:] {
		if hostNow[r.answer] == "" {
			t.Errorf("after the loss of %s a request was answered by %s, which no survivor runs (%v): %+v", victim.name, r.answer, hostNow, r)
		}
	}
}

// httpGetIn fetches http://addr/ from inside the network namespace at
// path: a thread of its own enters it (the host's busybox wget crashes),
// so the socket lives there. The thread is never handed back.
func httpGetIn(path, addr string) (string, error) {
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromPath(path)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			done <- result{err: err}
			return
		}
		conn, err := net.DialTimeout("tcp4", addr, 3*time.Second)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\nHost: web\r\n\r\n"); err != nil {
			done <- result{err: err}
			return
		}
		resp, err := io.ReadAll(conn)
		if err != nil {
			done <- result{err: err}
			return
		}
		head, body, ok := strings.Cut(string(resp), "\r\n\r\n")
		if !ok || !strings.Contains(head, " 200 ") {
			done <- result{err: fmt.Errorf("answer %q", resp)}
			return
		}
		done <- result{body: body}
	}()
	r := <-done
	return r.body, r.err
}

// findService finds a Service in a status.
func findService(s agent.Status, name string) (agent.ServiceStatus, bool) {
	for _, sv := range s.Services {
		if sv.Name == name {
			return sv, true
		}
	}
	return agent.ServiceStatus{}, false
}

// podNetnsOf is the network namespace of pod name (of the namespace
// clustertest) on host h.
func podNetnsOf(t *testing.T, h *clusterHost, name string) string {
	t.Helper()
	p := filepath.Join(h.stateDir, "netns", statedir.Key(clusterE2EKubeNS, name))
	if _, err := os.Stat(p); err != nil {
		ents, _ := os.ReadDir(filepath.Join(h.stateDir, "netns"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("%s: no network namespace of pod %s (%v); there are %v", h.name, name, err, names)
	}
	return p
}

// podResolvConf is the resolv.conf of a pod of host h.
func podResolvConf(t *testing.T, h *clusterHost) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(h.stateDir, "pods", "*", "*", "etc", "resolv.conf"))
	if len(files) == 0 {
		files, _ = filepath.Glob(filepath.Join(h.stateDir, "pods", "*", "etc", "resolv.conf"))
	}
	if len(files) == 0 {
		t.Fatalf("%s: no pod resolv.conf under %s", h.name, filepath.Join(h.stateDir, "pods"))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
