package specs

// Regression tests from a review of the manifest model: each describes a
// problem found (and since fixed) that it guards against.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// reviewLoad loads one manifest file named f.yaml.
func reviewLoad(t *testing.T, data string) (*DesiredState, error) {
	t.Helper()
	return Load(fstest.MapFS{"f.yaml": {Data: []byte(data)}}, ".", Options{})
}

// reviewMustLoad loads one manifest file that must be valid.
func reviewMustLoad(t *testing.T, data string) *DesiredState {
	t.Helper()
	s, err := reviewLoad(t, data)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

// reviewChildEnv names the test a re-executed test binary is to run as the
// child of reviewInChild.
const reviewChildEnv = "KELPIE_REVIEW_CHILD"

// reviewInChild runs body in a fresh test process, so that a fatal stack
// overflow or a hang cannot take the whole test run down. It reports whether
// the child passed within timeout, with its output. In the child itself it
// runs body (which reports failures with t.Errorf) and returns ok.
func reviewInChild(t *testing.T, timeout time.Duration, body func()) (ok bool, out string) {
	t.Helper()
	if os.Getenv(reviewChildEnv) == t.Name() {
		body()
		return true, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), reviewChildEnv+"="+t.Name())
	b, err := cmd.CombinedOutput()
	out = string(b)
	if len(out) > 2000 {
		out = out[:2000] + "\n…"
	}
	if ctx.Err() != nil {
		return false, fmt.Sprintf("timed out after %v\n%s", timeout, out)
	}
	return err == nil, out
}

// A mapping that merges itself (`&m {<<: *m}`) does not decode (the depth
// limit catches it), but failedKey then looks up metadata.namespace through
// locate.go's child(), which follows "<<" aliases with no bound and recurses
// until the Go stack overflows: a fatal error that cannot be recovered, so a
// 4-line manifest kills `kelpie validate`, `kelpie diff` and the agent.
func TestReviewSelfMergeCrashes(t *testing.T) {
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: a, <<: *m}\n"
	ok, out := reviewInChild(t, 60*time.Second, func() {
		_, err := reviewLoad(t, doc)
		var list ErrorList
		if !errors.As(err, &list) {
			t.Errorf("want an ErrorList, got %v", err)
		}
	})
	if !ok {
		t.Fatalf("loading a self-merging mapping did not return an error list:\n%s", out)
	}
}

// Merge keys are charged against the node budget while decoding, but the
// same document is then searched again by failedKey → child(), which tries
// every "<<" of every level: two merge keys per level make 2^levels calls. A
// 1.5 KB file of 40 levels hangs Load (26 levels already take ~4 s), despite
// the "refused fast".
func TestReviewMergeFanOutHangs(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nx0: &a0 {k: v}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "x%d: &a%d {<<: *a%d, <<: *a%d}\n", i, i, i-1, i-1)
	}
	b.WriteString("metadata: {name: a, <<: *a40}\n")
	doc := b.String()
	ok, out := reviewInChild(t, 10*time.Second, func() {
		_, err := reviewLoad(t, doc)
		if err == nil {
			t.Errorf("want an error")
		}
	})
	if !ok {
		t.Fatalf("a %d-byte merge fan-out was not refused within 10s:\n%s", len(doc), out)
	}
}

// Decode errors quote the offending scalar (describe() prints up to 40
// characters of it). For a Secret that is the secret itself, and the error
// goes to stderr, logs, `status` and metrics: "stringData[pin]: expected
// string, got integer 123456". Secret values must never be printed.
func TestReviewDecodeErrorLeaksSecretValue(t *testing.T) {
	for _, tc := range []struct{ doc, secret string }{
		{"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {pin: 123456}\n", "123456"},
		{"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {pin: 98765432}\n", "98765432"},
		{"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: hunter2-is-my-password\n", "hunter2"},
	} {
		_, err := reviewLoad(t, tc.doc)
		if err == nil {
			t.Fatalf("%q: want an error", tc.doc)
		}
		if strings.Contains(err.Error(), tc.secret) {
			t.Errorf("error prints the secret value %q:\n%v", tc.secret, err)
		}
	}
}

const reviewPod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n"

// diffPair loads two versions of one object and returns their diff and
// whether their hashes are equal.
func diffPair(t *testing.T, a, b string) ([]Change, bool) {
	t.Helper()
	sa, sb := reviewMustLoad(t, a), reviewMustLoad(t, b)
	changes, err := Diff(sa, sb)
	if err != nil {
		t.Fatal(err)
	}
	return changes, sa.Objects[0].Hash == sb.Objects[0].Hash
}

// Lists whose elements have unique names are compared by name only, so a
// change of order vanishes from the diff. For initContainers (run one after
// the other) and env (later values may use $(EARLIER)) order is meaning; the
// canonical hash does change, so the reconciler rolls the pods while
// `kelpie diff` says "No changes" and exits 0.
func TestReviewDiffHidesReorderedLists(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"initContainers",
			reviewPod + "  initContainers: [{name: migrate, image: m}, {name: seed, image: s}]\n  containers: [{name: a, image: b}]\n",
			reviewPod + "  initContainers: [{name: seed, image: s}, {name: migrate, image: m}]\n  containers: [{name: a, image: b}]\n"},
		{"env",
			reviewPod + "  containers: [{name: a, image: b, env: [{name: A, value: x}, {name: B, value: $(A)}]}]\n",
			reviewPod + "  containers: [{name: a, image: b, env: [{name: B, value: $(A)}, {name: A, value: x}]}]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changes, sameHash := diffPair(t, tc.a, tc.b)
			if !sameHash && len(changes) == 0 {
				t.Errorf("the hash changed (pods will roll) but Diff reports no change")
			}
		})
	}
}

// Kubernetes defaults completions only when neither completions nor
// parallelism is set; `parallelism: 3` alone is a work-queue Job whose
// completions stay unset. kelpie sets completions to 1, turning it into a
// Job that needs one success (and so runs one pod, not three).
func TestReviewJobWorkQueueDefaults(t *testing.T) {
	s := reviewMustLoad(t, "apiVersion: batch/v1\nkind: Job\nmetadata: {name: q}\nspec:\n  parallelism: 3\n  template: {spec: {containers: [{name: a, image: b}]}}\n")
	j := s.Objects[0].Obj.(*batchv1.Job)
	if j.Spec.Completions != nil {
		t.Errorf("completions defaulted to %d for a work-queue Job (parallelism 3, no completions); Kubernetes leaves it unset", *j.Spec.Completions)
	}
}

// Kubernetes defaults a container's requests to its limits when only limits
// are given. Without that, a pod with `limits: {cpu: 1}` is placed as if it
// requested nothing (scheduling uses requests against capacity), and
// spelling the request out changes the hash.
func TestReviewRequestsDefaultToLimits(t *testing.T) {
	s := reviewMustLoad(t, reviewPod+"  containers: [{name: a, image: b, resources: {limits: {cpu: 1, memory: 1Gi}}}]\n")
	req := s.Objects[0].Obj.(*corev1.Pod).Spec.Containers[0].Resources.Requests
	if q, ok := req[corev1.ResourceCPU]; !ok || q.String() != "1" {
		t.Errorf("requests %v; want cpu and memory defaulted from the limits", req)
	}
}

// Defaults Kubernetes applies that kelpie does not, so that spelling them
// out changes the hash (pods roll) and shows as a change in `kelpie diff`.
func TestReviewDefaultsSpelledOutChangeHash(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"fieldRef.apiVersion defaults to v1",
			reviewPod + "  containers: [{name: a, image: b, env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]}]\n",
			reviewPod + "  containers: [{name: a, image: b, env: [{name: A, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.name}}}]}]\n"},
		{"pod securityContext defaults to {}",
			reviewPod + "  containers: [{name: a, image: b}]\n",
			reviewPod + "  securityContext: {}\n  containers: [{name: a, image: b}]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changes, sameHash := diffPair(t, tc.a, tc.b)
			if !sameHash || len(changes) != 0 {
				js, _ := json.Marshal(changes)
				t.Errorf("same object after Kubernetes defaulting; hash equal %v, diff %s", sameHash, js)
			}
		})
	}
}

const reviewTemplate = "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: a, image: b}]}\n"

// Rolling-update parameters Kubernetes rejects and kelpie accepts: a
// DaemonSet with maxUnavailable 0 (maxSurge defaults to 0) can never roll,
// and maxUnavailable above 100% is meaningless.
func TestReviewRollingUpdateLimits(t *testing.T) {
	for _, tc := range []struct{ name, doc, field string }{
		{"DaemonSet maxUnavailable and maxSurge both 0",
			"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: a}\nspec:\n  updateStrategy: {rollingUpdate: {maxUnavailable: 0}}\n" + reviewTemplate,
			"spec.updateStrategy.rollingUpdate"},
		{"DaemonSet maxSurge, not supported by kelpie",
			"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: a}\nspec:\n  updateStrategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}\n" + reviewTemplate,
			"spec.updateStrategy.rollingUpdate.maxSurge: a DaemonSet's maxSurge is not supported by kelpie"},
		{"Deployment maxUnavailable over 100%",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  strategy: {rollingUpdate: {maxUnavailable: 150%}}\n" + reviewTemplate,
			"spec.strategy.rollingUpdate.maxUnavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reviewLoad(t, tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %v; want one at %s", err, tc.field)
			}
		})
	}
}

// Kubernetes refuses TZ= and CRON_TZ= in spec.schedule ("use timeZone
// field instead"). robfig/cron's ParseStandard accepts them, so kelpie
// accepts a schedule whose zone contradicts spec.timeZone.
func TestReviewCronJobTZInSchedule(t *testing.T) {
	job := "  jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: b}]}}}}\n"
	for _, tc := range []struct{ name, spec string }{
		{"CRON_TZ and timeZone", "  schedule: \"CRON_TZ=America/New_York 0 * * * *\"\n  timeZone: Europe/Oslo\n"},
		{"TZ prefix", "  schedule: \"TZ=Europe/Oslo 0 * * * *\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reviewLoad(t, "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: a}\nspec:\n"+tc.spec+job)
			if err == nil || !strings.Contains(err.Error(), "spec.schedule") {
				t.Errorf("error %v; want spec.schedule refused (use spec.timeZone)", err)
			}
		})
	}
}

// envFrom with a configMapRef or secretRef that names nothing is accepted:
// ref() skips empty names ("reported as a missing name by the caller"), but
// envFrom's caller never reports it. Kubernetes requires the name, and
// requires the prefix to be a valid variable name.
func TestReviewEnvFromMissingName(t *testing.T) {
	for _, tc := range []struct{ name, item, field string }{
		{"configMapRef without name", "{configMapRef: {}}", "spec.containers[0].envFrom[0].configMapRef.name"},
		{"secretRef with empty name", "{secretRef: {name: \"\"}}", "spec.containers[0].envFrom[0].secretRef.name"},
		{"invalid prefix", "{prefix: \"1=\", configMapRef: {name: c}}", "spec.containers[0].envFrom[0].prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := reviewPod + "  containers: [{name: a, image: b, envFrom: [" + tc.item + "]}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
			_, err := reviewLoad(t, doc)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %v; want one at %s", err, tc.field)
			}
		})
	}
}

// With hostNetwork every containerPort is a host port (Kubernetes defaults
// hostPort to containerPort), so two containers on port 80 cannot both run;
// kelpie only checks ports that spell hostPort out.
func TestReviewHostNetworkPortConflict(t *testing.T) {
	_, err := reviewLoad(t, reviewPod+"  hostNetwork: true\n  containers:\n  - {name: a, image: b, ports: [{containerPort: 80}]}\n  - {name: c, image: d, ports: [{containerPort: 80}]}\n")
	if err == nil || !strings.Contains(err.Error(), "spec.containers[1].ports[0]") {
		t.Errorf("error %v; want a host port conflict at spec.containers[1].ports[0]", err)
	}
}

// Two Services asking for the same nodePort, or the same clusterIP, cannot
// both be programmed (Kubernetes refuses the second as "already
// allocated"); kelpie validates each Service alone and accepts both.
func TestReviewServiceAllocationConflicts(t *testing.T) {
	svc := func(name, spec string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec:\n" + spec + "\n---\n"
	}
	for _, tc := range []struct{ name, doc, field string }{
		{"nodePort", svc("a", "  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]") + svc("b", "  type: NodePort\n  ports: [{port: 81, nodePort: 30080}]"), "nodePort"},
		{"clusterIP", svc("a", "  clusterIP: 10.96.0.10\n  ports: [{port: 80}]") + svc("b", "  clusterIP: 10.96.0.10\n  ports: [{port: 80}]"), "clusterIP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reviewLoad(t, tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %v; want the second Service's %s refused as already used", err, tc.field)
			}
		})
	}
}

// yaml.v3 reports parser errors at its 0-based context line (the line
// before the enclosing block starts), and yamlError passes that on. An
// indentation mistake on line 10 of the second document is reported at
// line 4, the `---` of the file's first document boundary — before the
// broken document even starts. The issue asks for FILE:LINE:COL.
func TestReviewSyntaxErrorLine(t *testing.T) {
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata:\n  x: y\n z: w\n"
	_, err := reviewLoad(t, doc)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("error %v; want one syntax error", err)
	}
	if got := list[0].Pos.Line; got != 10 {
		t.Errorf("syntax error at %s; the bad line is 10 (` z: w`), and line %d is not even in the broken document", list[0].Pos, got)
	}
}

// A syntax error in a later document of a file also yields "Secret "s" not
// found; define it in the repository" for every use of an object defined in
// the broken part: it is defined, it just did not parse. References into
// documents that failed to decode are suppressed; those of unparsed
// documents are not.
func TestReviewSyntaxErrorAddsSpuriousMissingReference(t *testing.T) {
	doc := reviewPod + "  containers: [{name: a, image: b, envFrom: [{secretRef: {name: s}}]}]\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  a: b\n c: d\n"
	_, err := reviewLoad(t, doc)
	if err == nil {
		t.Fatal("want a syntax error")
	}
	if strings.Contains(err.Error(), "not found") {
		t.Errorf("a syntax error also produced a missing-reference error:\n%v", err)
	}
}

// locate() follows "<<: *alias" and "<<: {map}" but not a list of merged
// mappings ("<<: [*a, *b]", which the decoder accepts), so errors in merged
// fields point at the list item, not the value.
func TestReviewListMergePosition(t *testing.T) {
	doc := reviewPod + "  containers:\n  - name: a\n    image: b\n    ports:\n    - <<: [{containerPort: 99999}]\n"
	_, err := reviewLoad(t, doc)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("error %v; want one", err)
	}
	if got := list[0].Pos.String(); got != "f.yaml:9:28" {
		t.Errorf("error at %s, want f.yaml:9:28 (the 99999)", got)
	}
}

// An alias used as a key (`{*k : a}` with `&k name`) is valid YAML for the
// key "name". The decoder rejects it saying the key is not a string while
// quoting a string: `field names must be strings, got "name"`.
func TestReviewAliasKeyMessage(t *testing.T) {
	_, err := reviewLoad(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: &k a, labels: {x: *k}, annotations: {*k : b}}\n")
	if err != nil && !strings.Contains(err.Error(), "alias") {
		t.Errorf("an alias key is neither accepted nor refused as an alias:\n%v", err)
	}
}

// Field paths bracket map keys ("metadata.labels[app.kubernetes.io/name]",
// keyPath's comment says why: dotted keys), except in the duplicate-key
// error, which joins them with a dot and so produces a path that
// splitPath reads as four fields.
func TestReviewDuplicateKeyPath(t *testing.T) {
	_, err := reviewLoad(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    app.kubernetes.io/name: x\n    app.kubernetes.io/name: y\n")
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("error %v; want one", err)
	}
	if got, want := list[0].Field, "metadata.labels[app.kubernetes.io/name]"; got != want {
		t.Errorf("field %q, want %q", got, want)
	}
}

// go-git's gitignore matcher lets a directory-only negation ("!*/") match
// every file below any directory, so the common "ignore all but" idiom
// (`*.yaml`, `!*/`, `!apps/*.yaml`) loads every YAML file in every
// subdirectory. git itself ignores drafts/x.yaml here.
func TestReviewIgnoreDirNegation(t *testing.T) {
	cm := func(name string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\n")}
	}
	fsys := fstest.MapFS{
		".kelpieignore":  {Data: []byte("*.yaml\n!*/\n!apps/*.yaml\n")},
		"apps/a.yaml":    cm("a"),
		"drafts/x.yaml":  {Data: []byte("broken: [")},
		"top-level.yaml": {Data: []byte("broken: [")},
	}
	state, err := Load(fsys, ".", Options{})
	if err != nil {
		t.Fatalf("drafts/x.yaml should be ignored (git check-ignore agrees): %v", err)
	}
	if state.Len() != 1 {
		t.Errorf("loaded %d objects, want 1", state.Len())
	}
}

// Only data and stringData of a Secret are withheld. A Secret exported with
// `kubectl get secret -o yaml` carries the last-applied-configuration
// annotation, a JSON copy of the whole Secret; when it changes, `kelpie
// diff` prints it, old and new value included.
func TestReviewSecretLastAppliedLeaks(t *testing.T) {
	secret := func(pw string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"stringData\":{\"password\":\"" + pw + "\"}}'\nstringData: {password: " + pw + "}\n"
	}
	changes, _ := diffPair(t, secret("hunter2"), secret("correct-horse"))
	js, _ := json.Marshal(changes)
	if strings.Contains(string(js), "hunter2") || strings.Contains(string(js), "correct-horse") {
		t.Errorf("diff of a Secret prints its value:\n%s", js)
	}
}
