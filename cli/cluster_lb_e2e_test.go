package cli

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// lbE2EManifest is three pods answering HTTP on 8080 with their name and
// three LoadBalancer Services over them: web-lb on port 80 for all, web-lb-b
// on the same port (it loses it to web-lb on every host: the lexically
// first Service wins), and web-lb-private on 8081 for host a's address
// only (10.231.0.11/32, set as loadBalancerSourceRanges).
const lbE2EManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: lbtest}
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
metadata: {name: web-lb, namespace: lbtest}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: web-lb-b, namespace: lbtest}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: web-lb-private, namespace: lbtest}
spec:
  type: LoadBalancer
  loadBalancerSourceRanges: [10.231.0.11/32]
  selector: {app: web}
  ports:
  - {name: http, port: 8081, targetPort: http}
`

// TestClusterLoadBalancerEndToEnd runs three agents in network namespaces
// (real containerd, CNI and nftables) with LoadBalancer Services: the
// Service answers on every host's address on its own port; a second
// Service asking for the same port is reported, not served; a source
// outside loadBalancerSourceRanges is refused while one inside is served;
// status lists every host's address as the Service's ingress.
func TestClusterLoadBalancerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end cluster test: not in -short")
	}
	testenv.Binary(t, "nft", "nftables")
	testenv.Binary(t, "busybox", "busybox-static")
	c := newClusterE2E(t)
	repo := testenv.NewGitRepo(t)
	repo.Git("init", "-q", "--bare", "-b", "main", c.bare)
	c.push(repo, "v1: load balancers", lbE2EManifest)
	a, b, cc := c.addHost(0), c.addHost(1), c.addHost(2)
	all := []*clusterHost{a, b, cc}
	for _, h := range all {
		h.start()
	}
	var ips []string
	for _, h := range all {
		ips = append(ips, h.ip)
	}
	slices.Sort(ips)

	// Every host serves web-lb with three endpoints, lists the three
	// hosts as its ingress, and reports web-lb-b's port as taken.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ok := true
		for _, h := range all {
			s, up := h.status()
			lb, found := findService(s, "web-lb")
			lbb, _ := findService(s, "web-lb-b")
			priv, _ := findService(s, "web-lb-private")
			if !up || !found || lb.Endpoints != 3 || priv.Endpoints != 3 || !strings.HasPrefix(s.DataPath, "programmed") ||
				!slices.Equal(lb.Ingress, ips) || len(lb.Conflicts) != 0 || len(lbb.Ingress) != 0 || len(lbb.Conflicts) != 3 {
				ok = false
				break
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for _, h := range all {
				s, _ := h.status()
				t.Logf("%s: services %+v, data path %q", h.name, s.Services, s.DataPath)
			}
			t.Fatalf("the LoadBalancer Services did not settle on every host\n%s", c.logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	s := a.statusOK(t)
	lbb, _ := findService(s, "web-lb-b")
	want := fmt.Sprintf("port 80/TCP taken on host %s by LoadBalancer service lbtest/web-lb", a.name)
	if !slices.Contains(lbb.Conflicts, want) {
		t.Errorf("web-lb-b's conflicts %q lack %q", lbb.Conflicts, want)
	}
	lb, _ := findService(s, "web-lb")
	if len(lb.Ports) != 1 || lb.Ports[0].NodePort == 0 || len(lbb.Ports) != 1 || lbb.Ports[0].NodePort != 0 {
		t.Errorf("node ports: web-lb %+v (want one), web-lb-b %+v (allocateLoadBalancerNodePorts: false, want none)", lb.Ports, lbb.Ports)
	}

	// web-lb answers on every host's address on port 80, from outside
	// (the test's namespace, 10.231.0.1), from all three pods.
	answers := map[string]int{}
	for _, h := range all {
		addr := h.ip + ":80"
		waitGet(t, "", addr)
		for range 10 {
			body, err := httpGetIn("/proc/self/ns/net", addr)
			if err != nil {
				t.Fatalf("GET http://%s/: %v", addr, err)
			}
			answers[strings.TrimSpace(body)]++
		}
	}
	if len(answers) != 3 {
		t.Errorf("30 requests to web-lb were answered by %v; want all three pods", answers)
	}

	// web-lb-private: host a's address (a source in the range) is served
	// on every host; the test's namespace (outside it) is refused.
	for _, h := range all {
		addr := h.ip + ":8081"
		waitGet(t, a.net.Path(), addr)
		conn, err := net.DialTimeout("tcp4", addr, 1500*time.Millisecond)
		if err == nil {
			conn.Close()
			t.Errorf("%s accepted a connection from 10.231.0.1, outside loadBalancerSourceRanges", addr)
		}
	}
}

// waitGet waits until http://addr/ answers 200 from the network namespace
// at path ("": this process's).
func waitGet(t *testing.T, path, addr string) {
	t.Helper()
	if path == "" {
		path = "/proc/self/ns/net"
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := httpGetIn(path, addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("http://%s/ from %s does not answer: %v", addr, path, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
