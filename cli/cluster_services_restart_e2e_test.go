package cli

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// vipProbe requests a Service's virtual IP from inside a pod's network
// namespace in a loop, every interval, until stopped, and records each
// failure with its time.
type vipProbe struct {
	netns, addr string
	stop        chan struct{}
	done        chan struct{}
	mu          sync.Mutex
	ok          int
	failed      []string // "time: error"
}

// startVIPProbe starts requesting addr from the pod network namespace netns.
func startVIPProbe(netns, addr string, interval time.Duration) *vipProbe {
	p := &vipProbe{netns: netns, addr: addr, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			_, err := httpGetIn(p.netns, p.addr)
			p.mu.Lock()
			if err != nil {
				p.failed = append(p.failed, time.Now().Format("15:04:05.000")+": "+err.Error())
			} else {
				p.ok++
			}
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(interval):
			}
		}
	}()
	return p
}

// end stops the loop and returns its counts.
func (p *vipProbe) end() (ok int, failed []string) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, p.failed
}

// anyPodNetns is the network namespace of one of host h's pods.
func anyPodNetns(t *testing.T, h *clusterHost) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(h.stateDir, "netns"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("%s: no pod network namespace under its state dir (%v)", h.name, err)
	}
	return filepath.Join(h.stateDir, "netns", ents[0].Name())
}

// stopAgent SIGTERMs the host's agent by its pid and waits for it: a
// graceful stop, which leaves the pods running (no --leave-on-stop).
func (h *clusterHost) stopAgent() {
	if h.cmd == nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	<-h.done
	h.cmd = nil
}

// waitServiceEverywhere waits until every host resolves the Service name
// to want endpoints and has programmed its data path, and returns the
// Service as the first host sees it.
func (c *clusterE2E) waitServiceEverywhere(name string, want int, timeout time.Duration, hosts ...*clusterHost) agent.ServiceStatus {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var first agent.ServiceStatus
		ok := true
		for i, h := range hosts {
			s, up := h.status()
			sv, found := findService(s, name)
			if !up || !found || sv.ClusterIP == "" || sv.Endpoints != want || !strings.HasPrefix(s.DataPath, "programmed") {
				ok = false
				break
			}
			if i == 0 {
				first = sv
			}
		}
		if ok {
			return first
		}
		if time.Now().After(deadline) {
			for _, h := range hosts {
				s, _ := h.status()
				c.t.Logf("%s: services %+v, data path %q, pods %+v", h.name, s.Services, s.DataPath, s.Pods)
			}
			c.t.Fatalf("%s did not get %d endpoints on every host\n%s", name, want, c.logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestClusterServicesSurviveAgentRestart: a pod on host a requests a
// Service's virtual IP every 50 ms while a's agent is stopped gracefully,
// kept down, started again, then SIGKILLed and started again. Not one
// request fails: the data path is the kernel's, it outlives the agent, and
// an agent that starts rebuilds it from the cluster state without first
// taking away what it does not know yet.
func TestClusterServicesSurviveAgentRestart(t *testing.T) {
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
	web := c.waitServiceEverywhere("web", 3, 3*time.Minute, all...)
	vip := web.ClusterIP + ":80"
	netns := anyPodNetns(t, a)
	if _, err := httpGetIn(netns, vip); err != nil {
		t.Fatalf("GET http://%s/ from a pod on %s before any restart: %v", vip, a.name, err)
	}

	probe := startVIPProbe(netns, vip, 50*time.Millisecond)
	step := func(what string, f func()) {
		t.Logf("%s", what)
		f()
	}
	step("SIGTERM a's agent, keep it down 3 s", func() {
		a.stopAgent()
		time.Sleep(3 * time.Second) // the window the probe loop covers with the agent down
	})
	step("start a's agent again", func() {
		a.start()
		c.waitServiceEverywhere("web", 3, 2*time.Minute, all...)
	})
	step("SIGKILL a's agent and start it at once", func() {
		a.kill()
		a.start()
		c.waitServiceEverywhere("web", 3, 2*time.Minute, all...)
		time.Sleep(2 * time.Second) // a few requests after the restarted agent settled
	})
	ok, failed := probe.end()
	t.Logf("%d requests answered through the VIP across the restarts, %d failed", ok, len(failed))
	if ok < 40 {
		t.Errorf("only %d requests answered: the probe loop did not run through the restarts", ok)
	}
	if len(failed) > 0 {
		t.Errorf("%d requests to the VIP failed while a's agent restarted:\n%s\n%s", len(failed), strings.Join(failed, "\n"), c.logs())
	}
}
