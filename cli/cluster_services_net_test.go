package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
)

// The far host of the services test has no link it shares with the other
// hosts: it sits alone on 10.231.2.0/24, a veth pair to a router namespace
// that is also on the hosts' bridge as 10.231.0.2. Gossip, VXLAN and the
// test's own requests reach it through the router.
const (
	servicesE2ERouter     = "kelpie-ce2e-r"
	servicesE2ERouterVeth = "kce2er"
	servicesE2ERouterAddr = "10.231.0.2"
	servicesE2EFarNet     = "10.231.2.0/24"
	servicesE2EFarGateway = "10.231.2.1"
	servicesE2EFarPrefix  = "10.231.2." // + 11+i: the far host's address
)

// putBehindRouter moves host h (added, not started) off the hosts' bridge
// onto a link of its own behind a router namespace, with a default route
// through it; the hosts near and the machine's own namespace (for the
// test's requests) route the far link through the router. The host's
// address changes to 10.231.2.1N; unplug still deletes it (the veth pair
// goes with its namespace).
func (c *clusterE2E) putBehindRouter(h *clusterHost, near ...*clusterHost) {
	t := c.t
	t.Helper()
	router := nethost.Netns{Name: servicesE2ERouter, Veth: servicesE2ERouterVeth, Bridge: clusterE2EBridge, Addr: servicesE2ERouterAddr + "/24"}
	router.Unplug() // a leftover of a run that ended without its cleanup
	router.Plug(t)
	t.Cleanup(router.Unplug)
	router.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	h.net.Unplug()
	h.ip = servicesE2EFarPrefix + strings.TrimPrefix(h.ip, "10.231.0.")
	h.net.Addr = h.ip + "/24"
	nethost.Run(t, "ip", "netns", "add", h.net.Name)
	nethost.Run(t, "ip", "-n", router.Name, "link", "add", h.net.Veth, "type", "veth", "peer", "name", "eth0", "netns", h.net.Name)
	router.Run(t, "ip", "addr", "add", servicesE2EFarGateway+"/24", "dev", h.net.Veth)
	router.Run(t, "ip", "link", "set", h.net.Veth, "up")
	h.net.Run(t, "ip", "addr", "add", h.net.Addr, "dev", "eth0")
	h.net.Run(t, "ip", "link", "set", "eth0", "up")
	h.net.Run(t, "ip", "link", "set", "lo", "up")
	h.net.Run(t, "ip", "route", "add", "default", "via", servicesE2EFarGateway)
	for _, n := range near {
		n.net.Run(t, "ip", "route", "add", servicesE2EFarNet, "via", servicesE2ERouterAddr)
	}
	// The route goes with the bridge too; this is for a bridge kept.
	nethost.Run(t, "ip", "route", "replace", servicesE2EFarNet, "via", servicesE2ERouterAddr)
	t.Cleanup(func() { nethost.RunQuiet("ip", "route", "del", servicesE2EFarNet, "via", servicesE2ERouterAddr) })
}

// waitRoutes waits until every host routes each other host's pod slice
// the way want says ("host-gw" or "vxlan", by from and to host name) and
// leaves no peer unrouted, and returns the routes by host.
func (c *clusterE2E) waitRoutes(hosts []*clusterHost, want func(from, to string) string) map[string][]string {
	t := c.t
	t.Helper()
	got := map[string][]string{}
	deadline := time.Now().Add(time.Minute)
	for {
		ok := true
		for _, from := range hosts {
			s, up := from.status()
			got[from.name] = s.Routes
			if !up || len(s.Unrouted) > 0 || len(s.Routes) != len(hosts)-1 {
				ok = false
				continue
			}
			for _, to := range hosts {
				if to == from {
					continue
				}
				tag := fmt.Sprintf("(%s to %s", want(from.name, to.name), to.name)
				found := false
				for _, r := range s.Routes {
					found = found || strings.Contains(r, tag)
				}
				ok = ok && found
			}
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			for _, h := range hosts {
				s, _ := h.status()
				t.Logf("%s: routes %q, unrouted %q", h.name, s.Routes, s.Unrouted)
			}
			t.Fatalf("the hosts did not route each other's pods as expected\n%s", c.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// servicesE2EClient is a pod pinned to kc-a that fetches http://web/ in a
// loop, forever, and prints one line per request: its number, the
// machine's uptime when it started and ended (the pod reads /proc/uptime,
// the test reads the same clock), ok or fail, the address web resolved to
// and the answer (the web pod's name) or the error.
//
// The name goes through the pod's resolv.conf: its nameserver (the cluster
// DNS on the pod gateway) and its search path make the bare "web" the
// Service web of the pod's namespace. busybox nslookup resolves it (with
// its own resolver), and nc sends "GET / HTTP/1.0" with "Host: web" to
// the address: the test image's busybox is linked statically with glibc,
// and its wget crashes in an image without glibc's shared libraries (it
// asks glibc's NSS even for a numeric address).
const servicesE2EClient = `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: clustertest}
spec:
  replicas: 1
  selector:
    matchLabels: {app: client}
  template:
    metadata:
      labels: {app: client}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {kubernetes.io/hostname: kc-a}
      containers:
      - name: client
        image: busybox:1.36
        command:
        - sh
        - -c
        - |
          i=0
          while :; do
            i=$((i+1))
            read t0 x < /proc/uptime
            ip=$(nslookup -type=a web 2>&1 | awk '/^Address/ && $2 !~ /:/ {a=$2} END {print a}')
            if [ -z "$ip" ]; then
              r=fail ip=- out="web did not resolve"
            else
              resp=$(printf 'GET / HTTP/1.0\r\nHost: web\r\n\r\n' | timeout 3 nc -w 1 "$ip" 80 2>&1 | tr -d '\r')
              case "$resp" in
              "HTTP/1."?" 200 "*) r=ok out=$(echo "$resp" | tail -n 1) ;;
              *) r=fail out=$(echo "$resp" | head -n 1) ;;
              esac
            fi
            read t1 x < /proc/uptime
            echo $i $t0 $t1 $r $ip ${out:-no answer}
            sleep 0.02
          done
`

// clientRequest is one request of the client pod's loop.
type clientRequest struct {
	seq        int
	start, end float64 // the machine's uptime, seconds
	ok         bool
	addr       string // what web resolved to, "-" when it did not
	answer     string // the web pod that answered, or the error
}

// clientLog is the log file of the client pod on host h ("" while there
// is none).
func clientLog(h *clusterHost) string {
	files, _ := filepath.Glob(filepath.Join(h.stateDir, "pods", "*", "logs", "client.log"))
	if len(files) == 0 {
		return ""
	}
	return files[0]
}

// readClientLog parses the client's complete lines; a line it cannot
// parse is an error.
func readClientLog(path string) ([]clientRequest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var out []clientRequest
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			return nil, fmt.Errorf("client log line %q", sc.Text())
		}
		var r clientRequest
		var e1, e2, e3 error
		r.seq, e1 = strconv.Atoi(f[0])
		r.start, e2 = strconv.ParseFloat(f[1], 64)
		r.end, e3 = strconv.ParseFloat(f[2], 64)
		if e1 != nil || e2 != nil || e3 != nil || (f[3] != "ok" && f[3] != "fail") {
			return nil, fmt.Errorf("client log line %q", sc.Text())
		}
		r.ok = f[3] == "ok"
		r.addr = f[4]
		r.answer = strings.Join(f[5:], " ")
		out = append(out, r)
	}
	return out, sc.Err()
}

// uptime is the machine's uptime in seconds: the clock of the client's
// log.
func uptime(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		t.Fatalf("/proc/uptime: %q", b)
	}
	u, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("/proc/uptime: %v", err)
	}
	return u
}

// countBy counts keys and renders the counts, sorted by key: "a=2 b=1".
func countBy(keys []string) string {
	n := map[string]int{}
	for _, k := range keys {
		n[k]++
	}
	names := make([]string, 0, len(n))
	for k := range n {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%d", k, n[k])
	}
	return strings.Join(parts, " ")
}
