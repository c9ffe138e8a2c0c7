package agent

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// chromiumPath is Debian's chromium (scripts/deps.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// ScreenshotsEnv names the directory TestDashboardScreenshots writes
// dashboard.png and dashboard-phone.png to (`make screenshots`: docs/).
const ScreenshotsEnv = "KELPIE_SCREENSHOTS"

// The dashboard cluster's manifests: a shop of two Deployments, a
// DaemonSet on every host, a CronJob, and a Secret whose value the page
// must never show.
const (
	dashSecretValue = "hunter2-dashboard-secret-value"
	dashWeb         = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1.27"}]
`
	dashAPI = `apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: "registry.example.com/shop/api:1.4.2"
        env: [{name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}]
`
	// dashAPIBroken has "replicas: two" on line 7.
	dashAPIBroken = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  replicas: two
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "registry.example.com/shop/api:1.5.0"}]
`
	dashExporter = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter, namespace: monitoring}
spec:
  selector: {matchLabels: {app: node-exporter}}
  template:
    metadata: {labels: {app: node-exporter}}
    spec:
      containers: [{name: exporter, image: "prom/node-exporter:v1.8.2"}]
`
	dashBackup = `apiVersion: batch/v1
kind: CronJob
metadata: {name: backup, namespace: shop}
spec:
  schedule: "17 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: dump, image: "postgres:16", command: [pg_dump]}]
`
	dashSecret = `apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
stringData:
  password: ` + dashSecretValue + `
`
)

// dashboardCluster runs three clustered agents (in process, real gossip
// on loopback, fake runtimes) over the shop's manifests until every
// workload runs Ready, then pushes a commit breaking api.yaml on line 7
// and waits until the leader refused it. It returns the leader and the
// refused commit.
func dashboardCluster(t *testing.T) (*clusterMember, string) {
	t.Helper()
	src := newFakeSource()
	files := map[string]string{"web.yaml": dashWeb, "api.yaml": dashAPI, "node-exporter.yaml": dashExporter,
		"backup.yaml": dashBackup, "secret.yaml": dashSecret}
	src.push("shop: web 4, api 2, node-exporter, nightly backup", files)
	tc := newTestCluster(t, src)
	for _, name := range []string{"edge-1", "edge-2", "edge-3"} {
		tc.start(name, 3, func(c *Config) { c.Repos = []string{"https://git.example.com/ops/shop.git"} })
	}
	lead := tc.leader()
	waitStatus(t, lead, "every workload healthy", func(s Status) bool {
		if len(s.Workloads) != 3 || s.Cluster == nil || len(s.Cluster.Members) != 3 {
			return false
		}
		for _, w := range s.Workloads {
			if w.Health != HealthHealthy || w.Desired == 0 {
				return false
			}
		}
		return true
	})
	files["api.yaml"] = dashAPIBroken
	bad := src.push("api 1.5.0: two replicas", files)
	lead.agent.Trigger("test")
	waitStatus(t, lead, "the broken commit refused", func(s Status) bool {
		return s.LastError != nil && s.LastError.Commit == bad.Hash && len(s.LastError.Errors) > 0 && len(s.Alerts) > 0
	})
	return lead, bad.Hash
}

// waitStatus polls m's status until cond holds, for at most 60 s.
func waitStatus(t *testing.T, m *clusterMember, what string, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := m.agent.Status()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status: %+v", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// needChromium returns chromium's path, or ends the test through
// testenv.Missing.
func needChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Missing(t, "%s not installed (Debian package chromium; scripts/deps.sh): %v", chromiumPath, err)
	}
	return chromiumPath
}

// runChromium runs headless chromium with args plus the flags that keep it
// off the network but for url, in its own process group with a fresh
// profile, for at most a minute. It kills the group when done and returns
// stdout and stderr.
func runChromium(t *testing.T, url string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--disable-extensions", "--no-default-browser-check", "--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0"}, args...)
	argv = append(argv, url)
	cmd := exec.CommandContext(ctx, needChromium(t), argv...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	pid := cmd.Process.Pid
	err := cmd.Wait()
	// Its zygote and renderers are in its group: none outlives the test.
	if kerr := syscall.Kill(-pid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
		t.Errorf("kill chromium's process group %d: %v", pid, kerr)
	}
	if ctx.Err() != nil {
		t.Fatalf("chromium did not finish within a minute; stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("chromium: %v; stderr:\n%s", err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// cspComplaint matches chromium's console messages about a resource the
// Content-Security-Policy refused.
var cspComplaint = regexp.MustCompile(`(?i)content security policy|Refused to (load|apply|execute|frame)`)

// consoleMessage matches a line chromium logs for a console message of
// the page (--enable-logging=stderr).
var consoleMessage = regexp.MustCompile(`(?m):CONSOLE[:(].*$`)

// servedPaths counts the requests for the stylesheet that h serves.
type servedPaths struct {
	h   http.Handler
	css atomic.Int32
}

// ServeHTTP counts r and serves it.
func (s *servedPaths) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/static/dashboard.css" {
		s.css.Add(1)
	}
	s.h.ServeHTTP(w, r)
}

// TestDashboardBrowser opens the leader's dashboard in headless Chromium:
// the DOM it renders shows the members, the leader, each workload's
// desired/updated/ready counts, the refused commit's FILE:LINE and its
// alert, and never the Secret's value; the browser fetched the stylesheet
// and its console holds no Content-Security-Policy complaint. A control
// page with inline style under the same policy proves the console check
// sees such complaints.
func TestDashboardBrowser(t *testing.T) {
	needChromium(t)

	// The control: chromium logs a CSP refusal for inline style.
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		setPageHeaders(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!DOCTYPE html><html><head><style>body{color:red}</style></head><body>control</body></html>`)
	}))
	defer control.Close()
	if _, stderr := runChromium(t, control.URL+"/", "--dump-dom"); !cspComplaint.MatchString(stderr) || !consoleMessage.MatchString(stderr) {
		t.Fatalf("chromium logged no CSP complaint for inline style under %q: the console check is blind; stderr:\n%s", dashboardCSP, stderr)
	}

	lead, bad := dashboardCluster(t)
	served := &servedPaths{h: lead.agent.Handler()}
	srv := httptest.NewServer(served)
	defer srv.Close()
	dom, stderr := runChromium(t, srv.URL+"/", "--dump-dom")

	if m := cspComplaint.FindAllString(stderr, -1); len(m) > 0 {
		t.Errorf("chromium's console complains about the CSP (%v); stderr:\n%s", m, stderr)
	}
	// The page runs no script: any console message is the browser's
	// complaint (a refused or missing resource).
	if m := consoleMessage.FindAllString(stderr, -1); len(m) > 0 {
		t.Errorf("chromium's console has messages for the page: %q", m)
	}
	if served.css.Load() == 0 {
		t.Errorf("chromium never fetched /static/dashboard.css")
	}
	if strings.Contains(dom, dashSecretValue) {
		t.Errorf("the page shows the Secret's value")
	}
	s := lead.agent.Status()
	for _, want := range []string{
		"kelpie on " + lead.name,
		// members and the leader
		"<strong>edge-1</strong>", "<strong>edge-2</strong>", "<strong>edge-3</strong>",
		"<strong>" + lead.name + `</strong> <span class="badge ok">leader</span>`,
		"<code>" + lead.name + "</code> (this node), term",
		"3/3 alive",
		// the workloads' desired, updated and ready counts
		`<strong>web</strong></td><td class="num">4</td><td class="num">4</td><td class="num">4</td>`,
		`<strong>api</strong></td><td class="num">2</td><td class="num">2</td><td class="num">2</td>`,
		`<strong>node-exporter</strong></td><td class="num">3</td><td class="num">3</td><td class="num">3</td>`,
		"3/3 healthy", "shop/<strong>backup</strong>", "17 3 * * *",
		// the refused commit, its FILE:LINE and its alert
		"Commit <code title=\"" + bad + "\">" + bad[:12] + "</code> refused",
		"api.yaml:7", "KelpieCommitRefused", "api 1.5.0: two replicas",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if s.Cluster != nil {
		for _, m := range s.Cluster.Members {
			for _, p := range m.Pods {
				if !strings.Contains(dom, p) {
					t.Errorf("the rendered page lacks %s's pod %s", m.Name, p)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s\nstderr:\n%s", dom, stderr)
	}
}

// TestDashboardScreenshots writes docs/dashboard.png (desktop) and
// docs/dashboard-phone.png of the leader's dashboard of the shop cluster
// with its refused commit, when KELPIE_SCREENSHOTS names the directory
// (`make screenshots`); otherwise it does nothing.
func TestDashboardScreenshots(t *testing.T) {
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		t.Skipf("%s is not set: no screenshots wanted (make screenshots)", ScreenshotsEnv)
	}
	needChromium(t)
	lead, _ := dashboardCluster(t)
	srv := httptest.NewServer(lead.agent.Handler())
	defer srv.Close()
	for _, shot := range []struct{ name, size string }{
		{"dashboard.png", "1280,1700"},
		{"dashboard-phone.png", "390,844"},
	} {
		out := filepath.Join(dir, shot.name)
		runChromium(t, srv.URL+"/", "--hide-scrollbars", "--window-size="+shot.size, "--screenshot="+out)
		if err := recompressPNG(out); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(out)
		if err != nil || fi.Size() == 0 {
			t.Fatalf("no screenshot %s: %v", out, err)
		}
		t.Logf("wrote %s (%d bytes)", out, fi.Size())
	}
}

// recompressPNG rewrites the PNG at path with 256 colours and the best
// compression: the screenshots are committed, and a page of flat colours
// loses nothing a reader sees.
func recompressPNG(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("decode screenshot %s: %w", path, err)
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, quantize(img)); err != nil {
		return fmt.Errorf("encode screenshot %s: %w", path, err)
	}
	if buf.Len() >= len(data) {
		return nil
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// quantize maps img onto its 256 most frequent colours (a dashboard is a
// few flat colours and their anti-aliased edges), each pixel to the
// nearest of them.
func quantize(img image.Image) *image.Paletted {
	b := img.Bounds()
	counts := map[color.RGBA]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	byCount := slices.Collect(maps.Keys(counts))
	slices.SortFunc(byCount, func(p, q color.RGBA) int {
		if c := cmp.Compare(counts[q], counts[p]); c != 0 {
			return c
		}
		return cmp.Compare(uint32(p.R)<<24|uint32(p.G)<<16|uint32(p.B)<<8|uint32(p.A), uint32(q.R)<<24|uint32(q.G)<<16|uint32(q.B)<<8|uint32(q.A))
	})
	pal := make(color.Palette, 0, 256)
	for _, c := range byCount[:min(len(byCount), 256)] {
		pal = append(pal, c)
	}
	out := image.NewPaletted(b, pal)
	index := map[color.RGBA]uint8{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			i, ok := index[c]
			if !ok {
				i = uint8(pal.Index(c))
				index[c] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	return out
}
