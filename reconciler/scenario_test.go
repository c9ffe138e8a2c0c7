package reconciler_test

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/golden"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// host is a Fake host driven through expand, plan and execute, as
// `kelpie apply` drives a real one.
type host struct {
	t    *testing.T
	fake *reconcilertest.Fake
	now  time.Time
}

// plan expands files and plans them against the fake's state.
func (h *host) plan(files map[string]string, opts reconciler.PlanOptions) (reconciler.Desired, []reconciler.Notice, reconciler.PlanResult, error) {
	h.t.Helper()
	d, notices := reconciler.Expand(reconciler.Load(h.t, files), reconciler.Host{Name: "node1"})
	actual, err := h.fake.Observe(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	opts.Now = h.now
	res, err := reconciler.Plan(d, actual, opts)
	return d, notices, res, err
}

// apply plans files and executes the plan; it returns the plan.
func (h *host) apply(files map[string]string, opts reconciler.PlanOptions) reconciler.PlanResult {
	h.t.Helper()
	_, _, res, err := h.plan(files, opts)
	if err != nil {
		h.t.Fatalf("plan: %v", err)
	}
	if rep := reconciler.Execute(context.Background(), h.fake, res.Actions, reconciler.ExecOptions{}); !rep.OK() {
		h.t.Fatalf("apply: %v", rep.Err())
	}
	return res
}

// TestScale scales a Deployment 2 → 5 → 1: scaling up creates only the
// new replicas, scaling down keeps the extra ones without prune and
// deletes exactly them with it; the remaining replicas are never touched.
func TestScale(t *testing.T) {
	h := &host{t: t, fake: reconcilertest.NewFake(reconciler.Actual{}), now: reconciler.Now}
	files := func(replicas int) map[string]string {
		return map[string]string{"web.yaml": reconciler.Deployment("web", replicas, "")}
	}
	steps := []struct {
		replicas int
		prune    bool
		want     string
	}{
		{2, false, "+ create pod default/web-0 (not running)\n+ create pod default/web-1 (not running)\n"},
		{5, false, "+ create pod default/web-2 (not running)\n+ create pod default/web-3 (not running)\n+ create pod default/web-4 (not running)\n"},
		{1, false, "keep pod default/web-1: no longer desired; kept because pruning is off\n" +
			"keep pod default/web-2: no longer desired; kept because pruning is off\n" +
			"keep pod default/web-3: no longer desired; kept because pruning is off\n" +
			"keep pod default/web-4: no longer desired; kept because pruning is off\n"},
		{1, true, "- delete pod default/web-1 (no longer desired)\n- delete pod default/web-2 (no longer desired)\n" +
			"- delete pod default/web-3 (no longer desired)\n- delete pod default/web-4 (no longer desired)\n"},
		{1, true, ""},
	}
	for _, s := range steps {
		res := h.apply(files(s.replicas), reconciler.PlanOptions{Prune: s.prune})
		if got := reconciler.PlanText(res); got != s.want {
			t.Fatalf("scale to %d (prune %v):\n--- got\n%s--- want\n%s", s.replicas, s.prune, got, s.want)
		}
	}
	for _, c := range h.fake.Calls() {
		if c.Subject == "default/web-0" && c.Method != "CreatePod" && c.Method != "Observe" {
			t.Errorf("web-0 was touched while scaling: %v", c)
		}
	}
}

// TestSiteScenario drives the bundled example site through a series of
// changes on a fake host and records every plan in a golden transcript.
func TestSiteScenario(t *testing.T) {
	site := siteFiles(t)
	h := &host{t: t, fake: reconcilertest.NewFake(reconciler.Actual{}), now: reconciler.Now}
	var out strings.Builder
	lastNotices := ""
	step := func(title string, files map[string]string, opts reconciler.PlanOptions, apply bool) {
		t.Helper()
		out.WriteString("# " + title + "\n")
		_, notices, res, err := h.plan(files, opts)
		if err != nil {
			out.WriteString("error: " + err.Error() + "\n\n")
			return
		}
		text := reconciler.PlanText(res)
		if text == "" {
			text = "(no changes)\n"
		}
		out.WriteString(text)
		if !res.NextCheck.IsZero() {
			out.WriteString("next check " + res.NextCheck.Format(time.TimeOnly) + "\n")
		}
		if res.Continue {
			out.WriteString("continue: plan again once applied\n")
		}
		if text := strings.Join(reconciler.NoticeStrings(notices), "\n"); text != lastNotices {
			for _, n := range notices {
				out.WriteString("notice " + n.String() + "\n")
			}
			lastNotices = text
		}
		if apply {
			rep := reconciler.Execute(context.Background(), h.fake, res.Actions, reconciler.ExecOptions{})
			if !rep.OK() {
				t.Fatalf("%s: apply: %v", title, rep.Err())
			}
			out.WriteString("(applied)\n")
		}
		out.WriteString("\n")
	}
	edit := func(files map[string]string, file, old, new string) map[string]string {
		t.Helper()
		files = maps.Clone(files)
		if !strings.Contains(files[file], old) {
			t.Fatalf("%s does not contain %q", file, old)
		}
		files[file] = strings.Replace(files[file], old, new, 1)
		return files
	}

	step("an empty host", site, reconciler.PlanOptions{}, true)
	step("after the apply", site, reconciler.PlanOptions{}, false)

	greeting := edit(site, "config/web.yaml", "greeting: hello", "greeting: bonjour")
	rolling := reconciler.PlanOptions{RollingUpdates: true}
	step("a ConfigMap changes: only the pods that use it are replaced, one at a time (web has 2 replicas: maxUnavailable 25% is 0, maxSurge 25% is 1: web-0's new pod starts beside it)", greeting, rolling, true)
	step("web-0's new pod is available: web-0 goes, web-1's new pod starts beside it", greeting, rolling, true)
	step("web-1's new pod is available: web-1 goes", greeting, rolling, true)
	step("after the rolling update", greeting, rolling, false)
	hello := edit(greeting, "config/web.yaml", "greeting: bonjour", "greeting: hello")
	step("without RollingUpdates (kelpie apply), every changed pod is replaced at once", hello, reconciler.PlanOptions{}, false)

	scaled := edit(greeting, "apps/web.yaml", "replicas: 2", "replicas: 1")
	step("web scaled to 1 without prune", scaled, reconciler.PlanOptions{}, false)
	step("web scaled to 1 with prune", scaled, reconciler.PlanOptions{Prune: true}, true)

	web0 := ""
	if a, err := h.fake.Observe(context.Background()); err == nil {
		for _, p := range a.Pods {
			if slot, ok := reconciler.SlotOf(p.Name); ok && slot == "web-0" {
				web0 = p.Name // web-0's pod after the rolling update: a surge name
			}
		}
	}
	if err := h.fake.SetContainer("default", web0, reconciler.ActualContainer{Name: "httpd", State: reconciler.Exited, ExitCode: 1, Restarts: 1, Streak: 1, FinishedAt: reconciler.Now.Add(-5 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := h.fake.SetContainer("default", "db-0", reconciler.ActualContainer{Name: "db", State: reconciler.Missing}); err != nil {
		t.Fatal(err)
	}
	step("httpd crashed a second time, db's container deleted by hand", scaled, reconciler.PlanOptions{}, true)
	h.now = reconciler.Now.Add(15 * time.Second)
	step("15 seconds later: the back-off has elapsed", scaled, reconciler.PlanOptions{}, true)
	step("converged", scaled, reconciler.PlanOptions{}, false)

	noSensors := edit(scaled, "apps/sensor-reader.yaml", "kelpie.dev/networks: sensors", "example.com/note: none")
	delete(noSensors, "infra/networks.yaml")
	step("the sensors network is dropped", noSensors, reconciler.PlanOptions{Prune: true}, true)

	step("the manifests directory vanished", map[string]string{"README.md": "nothing here"}, reconciler.PlanOptions{Prune: true}, false)
	renamed := edit(edit(noSensors, "infra/storage.yaml", "name: db-data", "name: db-data2"), "apps/db.yaml", "claimName: db-data", "claimName: db-data2")
	step("the claim is renamed: the old claim and its data stay", renamed, reconciler.PlanOptions{Prune: true}, true)

	golden.Check(t, "testdata/site.scenario.golden", out.String())
}

// TestEmptyDesiredRefusedOnSite checks the refusal on the example site.
func TestEmptyDesiredRefusedOnSite(t *testing.T) {
	h := &host{t: t, fake: reconcilertest.NewFake(reconciler.Actual{}), now: reconciler.Now}
	h.apply(siteFiles(t), reconciler.PlanOptions{})
	_, _, _, err := h.plan(map[string]string{"x.yaml": "# nothing\n"}, reconciler.PlanOptions{Prune: true})
	if !errors.Is(err, reconciler.ErrEmptyDesired) {
		t.Errorf("plan for an empty directory: %v, want ErrEmptyDesired", err)
	}
}

// siteFiles reads the bundled example site (its .kelpieignore included).
func siteFiles(t *testing.T) map[string]string {
	t.Helper()
	fsys := os.DirFS("../examples/site")
	files := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		files[p] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
