package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// siteRepo makes a repository whose first commit holds the bundled example
// under site/, and whose second commit changes it: scale web, change its
// image and a Secret value, remove the backup CronJob, add a ConfigMap.
func siteRepo(t *testing.T) (r *testenv.GitRepo, v1, v2 string) {
	t.Helper()
	r = testenv.NewGitRepo(t)
	r.CopyTree("../examples/site", "site")
	v1 = r.Commit("v1: the example site")
	r.Git("tag", "-a", "v1", "-m", "release v1")
	web := r.Read("site/apps/web.yaml")
	web = strings.Replace(web, "replicas: 2", "replicas: 3", 1)
	web = strings.Replace(web, "image: busybox:1.36", "image: busybox:1.37", 1)
	r.Write("site/apps/web.yaml", web)
	r.Write("site/config/web.yaml", strings.Replace(r.Read("site/config/web.yaml"), "password: change-me", "password: s3cr3t-v2", 1))
	if err := os.Remove(r.Dir + "/site/apps/backup.yaml"); err != nil {
		t.Fatal(err)
	}
	r.Write("site/config/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {k: v}\n")
	v2 = r.Commit("v2: scale web")
	return r, v1, v2
}

// TestDiffRevisions diffs two commits of a real repository, in JSON and
// text, with flags typed after the revisions.
func TestDiffRevisions(t *testing.T) {
	clearEnv(t)
	r, v1, v2 := siteRepo(t)
	res := runMain(t, "diff", "HEAD~1", "HEAD", "-o", "json", "--repo", r.Dir, "--path", "site")
	if res.code != 2 {
		t.Fatalf("exit %d, want 2 (changes); stderr:\n%s", res.code, res.stderr)
	}
	var out struct {
		From    string `json:"from"`
		To      string `json:"to"`
		Changes []struct {
			Action, APIVersion, Kind, Namespace, Name string
			Fields                                    []struct {
				Op, Path  string
				Old, New  any
				Sensitive bool
			}
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, res.stdout)
	}
	if out.From != v1 || out.To != v2 {
		t.Errorf("from %s to %s, want %s to %s", out.From, out.To, v1, v2)
	}
	var summary []string
	for _, ch := range out.Changes {
		s := ch.Action + " " + ch.Kind + "/" + ch.Name
		for _, f := range ch.Fields {
			s += " " + f.Op + ":" + f.Path
		}
		summary = append(summary, s)
	}
	want := []string{
		"add ConfigMap/extra",
		"remove CronJob/backup",
		"modify Deployment/web modify:spec.replicas modify:spec.template.spec.containers[name=httpd].image",
		"modify Secret/db-credentials modify:data.password",
	}
	if strings.Join(summary, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(summary, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(res.stdout, "s3cr3t") || strings.Contains(res.stdout, "change-me") {
		t.Error("diff printed a secret value")
	}

	// The same diff for people, named by an annotated tag and a branch.
	res = runMain(t, "--no-color", "diff", "--repo", r.Dir, "--path", "site", "v1", "main")
	if res.code != 2 {
		t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
	}
	text := strings.ReplaceAll(res.stdout, v1[:12], "V1SHA")
	text = strings.ReplaceAll(text, v2[:12], "V2SHA")
	goldenFile(t, "testdata/diff.golden", text)
}

// TestDiffWorkingTree compares HEAD with uncommitted edits.
func TestDiffWorkingTree(t *testing.T) {
	clearEnv(t)
	r, _, _ := siteRepo(t)
	res := runMain(t, "diff", "--repo", r.Dir, "--path", "site")
	if res.code != 0 || !strings.Contains(res.stdout, "No changes") {
		t.Fatalf("clean tree: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// A comment and reformatting are no change.
	r.Write("site/config/extra.yaml", "# just a comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: \"v\"\n")
	res = runMain(t, "diff", "--repo", r.Dir, "--path", "site", "-o", "json")
	if res.code != 0 || !strings.Contains(res.stdout, `"to": "worktree"`) || !strings.Contains(res.stdout, `"changes": []`) {
		t.Fatalf("reformatted tree: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	r.Write("site/config/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {k: changed}\n")
	res = runMain(t, "diff", "--repo", r.Dir, "--path", "site")
	if res.code != 2 || !strings.Contains(res.stdout, `~ data.k: "v" → "changed"`) || !strings.Contains(res.stdout, "1 to change") {
		t.Fatalf("edited tree: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// A broken manifest is an error with its position, not a diff.
	r.Write("site/config/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {k: [1]}\n")
	res = runMain(t, "diff", "--repo", r.Dir, "--path", "site")
	if res.code != 1 || !strings.Contains(res.stderr, "config/extra.yaml:4:11: data[k]: expected string, got list") {
		t.Fatalf("broken tree: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestDiffErrors covers bad revisions, paths and repositories.
func TestDiffErrors(t *testing.T) {
	clearEnv(t)
	r, _, _ := siteRepo(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown revision", []string{"diff", "--repo", r.Dir, "nope"}, `unknown revision "nope"`},
		{"too many revisions", []string{"diff", "--repo", r.Dir, "a", "b", "c"}, "at most two revisions"},
		{"path outside", []string{"diff", "--repo", r.Dir, "--path", "../x"}, "--path"},
		{"not a repository", []string{"diff", "--repo", t.TempDir()}, "open repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runMain(t, tc.args...)
			if res.code != 1 || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", res.code, res.stderr, tc.want)
			}
		})
	}
	// A path missing on both sides is an error, not "no changes".
	res := runMain(t, "diff", "--repo", r.Dir, "--path", "nowhere", "HEAD~1", "HEAD")
	if res.code != 1 || !strings.Contains(res.stderr, `"nowhere" (--path) does not exist`) {
		t.Fatalf("missing path on both sides: exit %d %s", res.code, res.stderr)
	}
	// A path missing at one commit is an empty state: everything is added.
	r.Write("later/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later}\n")
	r.Commit("add later/")
	res = runMain(t, "diff", "--repo", r.Dir, "--path", "later", "HEAD~1", "HEAD")
	if res.code != 2 || !strings.Contains(res.stdout, "+ ConfigMap/default/later") {
		t.Fatalf("path added in TO: exit %d %s%s", res.code, res.stdout, res.stderr)
	}
	// --path is relative to --repo when --repo is inside the work tree.
	res = runMain(t, "diff", "--repo", r.Dir+"/site", "HEAD~2", "HEAD~1")
	if res.code != 2 || !strings.Contains(res.stdout, "~ Deployment/default/web") {
		t.Fatalf("--repo subdirectory: exit %d %s%s", res.code, res.stdout, res.stderr)
	}
}
