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
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
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
// host: from a pod on the first host, the Service's virtual IP answers
// from the pods of all three hosts; the cluster DNS on the host's pod
// gateway resolves the Service's name to its virtual IP and the headless
// Service's to the three pods; the node port answers on every host's
// address; status shows the Service and its endpoints.
func TestClusterServicesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end cluster test: not in -short")
	}
	testenv.Binary(t, "nft", "nftables")
	testenv.Binary(t, "busybox", "busybox-static")
	c := newClusterE2E(t)
	repo := testenv.NewGitRepo(t)
	repo.Git("init", "-q", "--bare", "-b", "main", c.bare)
	c.push(repo, "v1: web", servicesE2EManifest)
	a, b, cc := c.addHost(0), c.addHost(1), c.addHost(2)
	all := []*clusterHost{a, b, cc}
	for _, h := range all {
		h.start()
	}

	// Every host resolves web to three endpoints and has programmed them.
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
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for _, h := range all {
				s, _ := h.status()
				t.Logf("%s: services %+v, data path %q, DNS %q, pods %+v", h.name, s.Services, s.DataPath, s.DNS, s.Pods)
			}
			t.Fatalf("web did not get three endpoints on every host\n%s", c.logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("web: VIP %s, ports %+v", web.ClusterIP, web.Ports)

	// From a pod on host a: the VIP answers from the pods of all three hosts.
	netns := podNetns(t, a)
	answers := map[string]int{}
	for range 30 {
		body, err := httpGetIn(netns, web.ClusterIP+":80")
		if err != nil {
			t.Fatalf("GET http://%s/ from a pod on %s: %v", web.ClusterIP, a.name, err)
		}
		answers[strings.TrimSpace(body)]++
	}
	if len(answers) != 3 {
		t.Errorf("30 requests to the VIP were answered by %v; want all three pods", answers)
	}

	// The cluster DNS on a's pod gateway: the Service's name is its VIP,
	// the headless Service's the three pods.
	s, _ := a.status()
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
	hp, _ := findService(s, "web-pods")
	out, err := exec.Command("nsenter", "--net="+netns, "busybox", "nslookup", "web-pods.clustertest.svc.cluster.local", gw).CombinedOutput()
	for _, e := range hp.Ports[0].Endpoints {
		ip, _, _ := strings.Cut(e, ":")
		if err != nil || !strings.Contains(string(out), ip) {
			t.Errorf("nslookup of the headless web-pods lacks %s: %v\n%s", ip, err, out)
		}
	}
	// The pods' resolv.conf names that server and the search path.
	rc := podResolvConf(t, a)
	if !strings.Contains(rc, "nameserver "+gw) || !strings.Contains(rc, "search clustertest.svc.cluster.local svc.cluster.local cluster.local") || !strings.Contains(rc, "ndots:5") {
		t.Errorf("a pod's resolv.conf on %s:\n%s", a.name, rc)
	}

	// The node port answers on every host's address, from outside.
	client := &http.Client{Timeout: 3 * time.Second}
	for _, h := range all {
		url := fmt.Sprintf("http://%s:%d/", h.ip, web.Ports[0].NodePort)
		var body []byte
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := client.Get(url)
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node port %s does not answer: %v", url, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("node port %s answered %q", url, strings.TrimSpace(string(body)))
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

// podNetns is the network namespace of a pod of host h.
func podNetns(t *testing.T, h *clusterHost) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(h.stateDir, "netns"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("%s: no pod network namespace under its state dir (%v)", h.name, err)
	}
	return filepath.Join(h.stateDir, "netns", ents[0].Name())
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
