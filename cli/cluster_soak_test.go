package cli

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// soakManifests is the soak's desired state at step i: a Deployment
// "fleet" of pods sleepers, scaled down by a tenth and back at every step,
// and a Deployment "web" of 6 whose ConfigMap (an env var) changes every
// third step and whose pod spec (its command) every fourth.
func soakManifests(pods, i int) string {
	fleet := pods
	if i%2 == 1 {
		fleet = pods - pods/10 // every step changes the scale, so every push is a commit
	}
	value := strconv.Itoa(i / 3)
	web := strings.ReplaceAll(e2eDeployment("web", 6, "busybox:1.36", `["sh", "-c", "sleep 3600"]`), "namespace: agenttest", "namespace: "+clusterE2EKubeNS)
	if (i/4)%2 == 1 {
		web = strings.Replace(web, `"sleep 3600"`, `"sleep 3601"`, 1) // a new pod spec: every replica is replaced
	}
	web = strings.Replace(web, "      - name: main\n", "      - name: main\n        envFrom: [{configMapRef: {name: web-config}}]\n", 1)
	return strings.ReplaceAll(e2eDeployment("fleet", fleet, "busybox:1.36", `["sleep", "3600"]`), "namespace: agenttest", "namespace: "+clusterE2EKubeNS) +
		"---\n" + web +
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config, namespace: " + clusterE2EKubeNS + "}\ndata: {ROUND: \"" + value + "\"}\n"
}

// soakSample is one sample of an agent's /metrics.
type soakSample struct {
	at                   time.Duration
	rss, goroutines, fds float64
}

// scrape reads the agent's resident memory, goroutines and open fds.
func (h *clusterHost) scrape() (soakSample, bool) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(h.apiBase() + "/metrics")
	if err != nil {
		return soakSample{}, false
	}
	defer resp.Body.Close()
	var s soakSample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "process_resident_memory_bytes":
			s.rss = v
		case "go_goroutines":
			s.goroutines = v
		case "process_open_fds":
			s.fds = v
		}
	}
	return s, s.rss > 0
}

// slope is the least-squares slope of ys over xs (per hour of xs).
func slope(samples []soakSample, y func(soakSample) float64) float64 {
	n := float64(len(samples))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, s := range samples {
		x := s.at.Hours()
		sx, sy, sxx, sxy = sx+x, sy+y(s), sxx+x*x, sxy+x*y(s)
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// TestClusterSoak pushes a change every 10 s for KELPIE_SOAK (a duration,
// e.g. 15m) to three hosts running KELPIE_SOAK_PODS (default 100) pods and
// a small Deployment: a scale down and back, a ConfigMap change, a new pod
// spec, in turn. At the end the cluster runs exactly the last commit's
// pods, once each, and the agents' memory, goroutines and open fds,
// sampled every 30 s from /metrics after the first fifth of the run, are
// reported with their slope (`make soak`; not in CI).
func TestClusterSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("KELPIE_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("a soak: set KELPIE_SOAK=15m (make soak)")
	}
	pods := 100
	if n, err := strconv.Atoi(os.Getenv("KELPIE_SOAK_PODS")); err == nil && n > 0 {
		pods = n
	}
	c := newClusterE2E(t)
	repo := testenv.NewGitRepo(t)
	repo.Git("init", "-q", "--bare", "-b", "main", c.bare)
	c.push(repo, "soak step 0", soakManifests(pods, 0))
	all := []*clusterHost{c.addHost(0), c.addHost(1), c.addHost(2)}
	for _, h := range all {
		h.start()
	}
	want := pods + 6
	c.waitView(fmt.Sprintf("%d pods running", want), 10*time.Minute, all, func(v view) bool {
		total, distinct, dups := v.replicas()
		return total == want && distinct == want && len(dups) == 0
	})
	start := time.Now()
	samples := map[string][]soakSample{}
	nextSample := start
	step := 0
	for time.Since(start) < d {
		step++
		c.push(repo, fmt.Sprintf("soak step %d", step), soakManifests(pods, step))
		if time.Now().After(nextSample) {
			for _, h := range all {
				if s, ok := h.scrape(); ok && time.Since(start) > d/5 {
					s.at = time.Since(start)
					samples[h.name] = append(samples[h.name], s)
				}
			}
			nextSample = nextSample.Add(30 * time.Second)
		}
		time.Sleep(10 * time.Second)
	}
	// The last commit's pods, exactly.
	last := pods + 6
	if step%2 == 1 {
		last = pods - pods/10 + 6
	}
	v := c.waitView(fmt.Sprintf("the last commit's %d pods, once each", last), 10*time.Minute, all, func(v view) bool {
		total, distinct, dups := v.replicas()
		return total == last && distinct == last && len(dups) == 0
	})
	t.Logf("soak: %d pushes in %s on 3 hosts; converged to %d pods\n%s", step, d, last, v.describe())
	for _, h := range all {
		s := samples[h.name]
		if len(s) == 0 {
			t.Errorf("no /metrics samples from %s", h.name)
			continue
		}
		first, end := s[0], s[len(s)-1]
		t.Logf("BENCH soak %s: %d samples; RSS %.1f → %.1f MiB (slope %+.1f MiB/h); goroutines %.0f → %.0f (%+.1f/h); open fds %.0f → %.0f (%+.1f/h)",
			h.name, len(s), first.rss/(1<<20), end.rss/(1<<20), slope(s, func(x soakSample) float64 { return x.rss / (1 << 20) }),
			first.goroutines, end.goroutines, slope(s, func(x soakSample) float64 { return x.goroutines }),
			first.fds, end.fds, slope(s, func(x soakSample) float64 { return x.fds }))
	}
}
