package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/mirror"
)

// TestAgentOnMirror runs `kelpie agent` as its own process on an air-gapped
// mirror: --repo DIR/site.git --image-dir DIR/images, filled only by
// `kelpie mirror import` of bundles that `kelpie mirror create` made from a
// site repository and an image dir; docker.io is mirrored to a closed
// loopback port, so no image can come from anywhere but DIR/images.
//
// v1 (nginx and busybox) runs. An incremental bundle (--since) with v2,
// which adds a workload on an image new to the mirror, is imported while
// the agent runs (after a copy of it with one byte of the new image's layer
// flipped is refused): the ref watch (not the poll: --interval 1h) sees it
// and the new image is imported from DIR/images. Then a v3 bundle with one
// byte of its git part flipped, a truncated one and one whose history does
// not descend from the mirror's are refused by `mirror import`: the
// mirror's files, the running pods and the applied commit stay as they
// were, and no sync runs. The intact v3 bundle is then imported and
// deployed. Last, the forked bundle imported with --force reaches the
// agent, which refuses it as not_fast_forward and keeps running v3.
func TestAgentOnMirror(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	e, hc := newAgentHost(t, addr, "site")
	ns := fmt.Sprintf("mirror%d", hc.Octet)
	prefix := hc.SubnetPrefix()
	site := e.repo
	dir := filepath.Join(t.TempDir(), "mirror")
	bundles := t.TempDir()
	e.flags = setFlag(e.flags, "--image-dir", filepath.Join(dir, mirror.ImagesDir))

	// The images the site's manifests use, as the uplink side has them.
	extra := pageImage("docker.io/kelpie-test/mirror-extra:1", "served from the mirror\n")
	srcImages := t.TempDir()
	for _, s := range append(testimage.Standard(), extra) {
		if _, err := testimage.Build(srcImages, s); err != nil {
			t.Fatal(err)
		}
	}
	create := func(repo, out string, extraArgs ...string) {
		t.Helper()
		start := time.Now()
		res := runMain(t, append([]string{"mirror", "create", "--repo", repo, "--path", "apps", "--out", out, "--image-dir", srcImages}, extraArgs...)...)
		if res.code != 0 {
			t.Fatalf("mirror create %s: exit %d\n%s%s", filepath.Base(out), res.code, res.stdout, res.stderr)
		}
		t.Logf("mirror create %s: %s, %.2fs", filepath.Base(out), humanBytes(fileSize(out)), time.Since(start).Seconds())
	}
	importBundle := func(file string) {
		t.Helper()
		start := time.Now()
		res := runMain(t, "mirror", "import", file, "--dir", dir)
		if res.code != 0 {
			t.Fatalf("mirror import %s: exit %d\n%s%s", filepath.Base(file), res.code, res.stdout, res.stderr)
		}
		t.Logf("mirror import %s: %.2fs\n%s", filepath.Base(file), time.Since(start).Seconds(), res.stdout)
	}
	commit := func(msg string, files map[string]string) string {
		t.Helper()
		for name, text := range files {
			site.Write("apps/"+name, text)
		}
		return site.Commit(msg)
	}

	// v1: web (nginx) and worker (busybox), in a full bundle.
	v1 := commit("v1", map[string]string{
		"web.yaml":    mirrorDeployment(ns, "web", "nginx:1.7.9", 1),
		"worker.yaml": envPod(ns, "worker", "v1"),
	})
	b1 := filepath.Join(bundles, "b1.kbundle")
	create(site.Dir, b1)
	importBundle(b1)

	e.startRepo(filepath.Join(dir, mirror.RepoDir), "--interval", "1h",
		"--registry-mirror", "docker.io=http://"+freeAddr(t)) // nothing listens: no pulls
	start := time.Now()
	s := e.waitFor("v1 running", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && runningIn(s, prefix, "web-0", "worker")
	})
	t.Logf("v1 running %.1fs after the agent started", time.Since(start).Seconds())
	if body, err := agentGet(podIP(s, "web-0")); err != nil || !strings.Contains(body, "Welcome to nginx!") {
		t.Fatalf("GET web-0: %v %q", err, body)
	}
	if got := hc.ImageDigest(extra.Name); got != "" {
		t.Fatalf("the new image %s is in containerd before v2: %s", extra.Name, got)
	}

	// v2 adds a workload on an image the mirror lacks so far; the
	// incremental bundle carries the commit and that image.
	v2 := commit("v2: extra on a new image", map[string]string{
		"extra.yaml": mirrorDeployment(ns, "extra", extra.Name, 1),
	})
	b2 := filepath.Join(bundles, "b2.kbundle")
	create(site.Dir, b2, "--since", b1)
	// A copy with one byte of the new image's layer flipped is refused
	// first, and leaves the mirror without the image.
	imagesPart, ok := bundleParts(t, b2)[mirror.ImagesPart]
	if !ok {
		t.Fatalf("bundle %s has no %s part", b2, mirror.ImagesPart)
	}
	blobOff, blobSize := largestBlob(t, b2, imagesPart)
	badImage := writeVariant(t, b2, "bad-image.kbundle", func(b []byte) []byte {
		b[blobOff+blobSize/2] ^= 0x01
		return b
	})
	mirrorBefore := testenv.TreeDigest(t, dir)
	seq := s.LastSync.Seq
	if res := runMain(t, "mirror", "import", badImage, "--dir", dir); res.code != 1 || !strings.Contains(res.stderr, "corrupt") {
		t.Fatalf("mirror import of v2 with a flipped image byte: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	} else {
		t.Logf("v2 with a flipped image byte refused: %s", strings.TrimSpace(res.stderr))
	}
	if testenv.TreeDigest(t, dir) != mirrorBefore {
		t.Fatal("the refused bundle changed the mirror directory")
	}
	e.quiet(2*time.Second, seq, v1)
	importBundle(b2)
	start = time.Now()
	s = e.waitFor("v2 running", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v2 && runningIn(s, prefix, "web-0", "worker", "extra-0")
	})
	t.Logf("NUMBER import→running (v2, new image from the mirror): %.2fs (sync %q, phases %+v)",
		time.Since(start).Seconds(), s.LastSync.Reason, s.LastSync.Phases)
	if s.LastSync.Seq <= seq || !strings.HasPrefix(s.LastSync.Reason, "fsnotify") {
		t.Errorf("v2 applied by sync %d (%q), want a sync after %d by the ref watch", s.LastSync.Seq, s.LastSync.Reason, seq)
	}
	if res := runMain(t, "mirror", "ls", dir); res.code != 0 || !strings.Contains(res.stdout, extra.Name) {
		t.Errorf("mirror ls after v2: exit %d, lacks %s\n%s%s", res.code, extra.Name, res.stdout, res.stderr)
	}
	if body, err := agentGet(podIP(s, "extra-0")); err != nil || body != "served from the mirror\n" {
		t.Fatalf("GET extra-0: %v %q", err, body)
	}
	want, _, err := testimage.Manifest(extra)
	if err != nil {
		t.Fatal(err)
	}
	if got := hc.ImageDigest(extra.Name); got != want.Digest.String() {
		t.Fatalf("containerd holds %s at %q, want %s", extra.Name, got, want.Digest)
	}

	// v3, bundled incrementally; its broken copies come first.
	v3 := commit("v3: worker v3", map[string]string{"worker.yaml": envPod(ns, "worker", "v3")})
	b3 := filepath.Join(bundles, "b3.kbundle")
	create(site.Dir, b3, "--since", b2)
	parts := bundleParts(t, b3)
	git, ok := parts[mirror.GitPart]
	if !ok || git[1] == 0 {
		t.Fatalf("bundle %s has no %s part: %v", b3, mirror.GitPart, parts)
	}
	flipped := writeVariant(t, b3, "flipped.kbundle", func(b []byte) []byte {
		b[git[0]+git[1]/2] ^= 0x01
		return b
	})
	truncated := writeVariant(t, b3, "truncated.kbundle", func(b []byte) []byte { return b[:len(b)/2] })
	// A history forked at v1: a full bundle of a clone reset to v1.
	fork := &testenv.GitRepo{TB: t, Dir: t.TempDir()}
	fork.Git("clone", "-q", site.Dir, ".")
	fork.Git("reset", "-q", "--hard", v1)
	fork.Write("apps/worker.yaml", envPod(ns, "worker", "fork"))
	forked := fork.Commit("fork of v1")
	forkBundle := filepath.Join(bundles, "fork.kbundle")
	create(fork.Dir, forkBundle)

	before := e.pods()
	mirrorBefore = testenv.TreeDigest(t, dir)
	seq = s.LastSync.Seq
	for _, c := range []struct {
		name, file, want string
	}{
		{"one byte flipped", flipped, "corrupt"},
		{"truncated", truncated, "corrupt"},
		{"not descending", forkBundle, "--force accepts it"},
	} {
		res := runMain(t, "mirror", "import", c.file, "--dir", dir)
		if res.code != 1 || !strings.Contains(res.stderr, c.want) {
			t.Errorf("mirror import of the %s bundle: exit %d, want 1 and %q\n%s%s", c.name, res.code, c.want, res.stdout, res.stderr)
		}
		t.Logf("%s bundle refused: %s", c.name, strings.TrimSpace(res.stderr))
		if got := testenv.TreeDigest(t, dir); got != mirrorBefore {
			t.Fatalf("the refused %s bundle changed the mirror directory", c.name)
		}
	}
	if got := testenv.Git(t, dir, "--git-dir", mirror.RepoDir, "rev-parse", "refs/heads/main"); got != v2 {
		t.Fatalf("mirror main is %s after the refused imports, want %s (forked %s)", got, v2, forked)
	}
	// A ref change would have been seen within a second.
	e.quiet(3*time.Second, seq, v2)
	if after := e.pods(); !samePods(before, after) || !allRunning(after) {
		t.Fatalf("refused bundles changed the host:\nbefore %+v\nafter  %+v", before, after)
	}

	// The mirror takes the intact bundle, and the agent deploys it.
	importBundle(b3)
	start = time.Now()
	s = e.waitFor("v3 running", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v3 && runningIn(s, prefix, "web-0", "worker", "extra-0")
	})
	t.Logf("NUMBER import→running (v3, no new image): %.2fs (sync %q, phases %+v)",
		time.Since(start).Seconds(), s.LastSync.Reason, s.LastSync.Phases)
	if got := hc.ContainerEnv(ns, "worker", "main", "VERSION"); got != "v3" {
		t.Fatalf("v3: worker has VERSION=%q", got)
	}
	if res := runMain(t, "mirror", "ls", dir); res.code == 0 {
		t.Logf("mirror ls:\n%s", res.stdout)
	}

	// Forced into the mirror, the forked history reaches the agent, which
	// refuses it: a mirror cannot roll the site back.
	before = e.pods()
	if res := runMain(t, "mirror", "import", forkBundle, "--dir", dir, "--force"); res.code != 0 || !strings.Contains(res.stdout, "(forced)") {
		t.Fatalf("mirror import --force of the fork: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	s = e.waitFor("the forced fork refused", time.Minute, func(s agent.Status) bool {
		return s.Pending != nil && s.Pending.Hash == forked && s.Pending.Reason == agent.KindNotFastForward
	})
	if s.Applied == nil || s.Applied.Hash != v3 || !strings.HasPrefix(s.LastSync.Reason, "fsnotify") {
		t.Fatalf("forced fork: applied %+v, last sync %+v; want %.12s applied, a sync by the ref watch", s.Applied, s.LastSync, v3)
	}
	t.Logf("forced fork refused by the agent: %s", s.LastError.Message)
	if after := e.pods(); !samePods(before, after) || !allRunning(after) {
		t.Fatalf("the forced fork changed the host:\nbefore %+v\nafter  %+v", before, after)
	}
	if testing.Verbose() {
		t.Logf("agent log:\n%s", e.log)
	}
	e.stop()
}

// TestAgentRepoFallback runs an agent with --repo UPSTREAM --repo MIRROR,
// where UPSTREAM is a git:// URL to a closed loopback port and MIRROR a
// bare repository on this host: the agent runs the mirror's commits and
// logs the URL it passed over. A mirror reset to an older commit (stale)
// and one forked before the applied commit are refused as
// not_fast_forward, in status and `kelpie status`, and the pods keep
// running; a mirror that moves forward again is followed.
func TestAgentRepoFallback(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	e, hc := newAgentHost(t, addr, "site")
	ns := fmt.Sprintf("fallback%d", hc.Octet)
	prefix := hc.SubnetPrefix()
	upstream := "git://" + freeAddr(t) + "/site.git" // nothing listens

	v1 := e.push("v1", map[string]string{"app.yaml": envPod(ns, "app", "v1")})
	e.startRepo(upstream, "--repo", e.bare, "--interval", "1h")
	start := time.Now()
	s := e.waitFor("v1 running from the mirror", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && runningIn(s, prefix, "app")
	})
	t.Logf("v1 running %.1fs after the agent started", time.Since(start).Seconds())
	if len(s.Repo) != 2 || s.Repo[0] != upstream || s.Repo[1] != e.bare {
		t.Errorf("status repo = %v, want [%s %s]", s.Repo, upstream, e.bare)
	}
	if log := e.log.String(); !strings.Contains(log, "repository URL passed over") || !strings.Contains(log, upstream) {
		t.Errorf("the agent log does not report the upstream passed over:\n%s", log)
	}

	// The mirror moves forward: followed through its ref watch.
	v2 := e.push("v2", map[string]string{"app.yaml": envPod(ns, "app", "v2")})
	start = time.Now()
	s = e.waitFor("v2 running", time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v2 && runningIn(s, prefix, "app") && s.LastError == nil
	})
	t.Logf("v2 running %.2fs after the push into the mirror (sync %q)", time.Since(start).Seconds(), s.LastSync.Reason)
	if !strings.HasPrefix(s.LastSync.Reason, "fsnotify") {
		t.Errorf("v2 synced by %q, want the ref watch", s.LastSync.Reason)
	}
	before := e.pods()

	refused := func(what, head string) {
		t.Helper()
		s := e.waitFor(what+" refused", time.Minute, func(s agent.Status) bool {
			return s.Pending != nil && s.Pending.Hash == head && s.Pending.Reason == agent.KindNotFastForward
		})
		if s.Applied == nil || s.Applied.Hash != v2 || s.LastError == nil || s.LastError.Kind != agent.KindNotFastForward {
			t.Fatalf("%s: applied %+v, last error %+v; want %.12s applied and not_fast_forward", what, s.Applied, s.LastError, v2)
		}
		if msg := s.LastError.Message; !strings.Contains(msg, upstream) || !strings.Contains(msg, "does not descend") {
			t.Errorf("%s: error %q names neither the upstream nor the refusal", what, msg)
		}
		text := runMain(t, "status", "--agent", e.listen)
		if text.code != 0 || !strings.Contains(text.stdout, "not_fast_forward") {
			t.Errorf("%s: kelpie status:\n%s%s", what, text.stdout, text.stderr)
		}
		t.Logf("%s: kelpie status:\n%s", what, text.stdout)
		if after := e.pods(); !samePods(before, after) || !allRunning(after) {
			t.Fatalf("%s changed the host:\nbefore %+v\nafter  %+v", what, before, after)
		}
		if got := hc.ContainerEnv(ns, "app", "main", "VERSION"); got != "v2" {
			t.Fatalf("%s: app has VERSION=%q", what, got)
		}
	}

	// A stale mirror: main back at v1.
	e.repo.Git("push", "-q", "-f", e.bare, v1+":refs/heads/main")
	refused("the stale mirror", v1)

	// A forked mirror: main on a commit made on top of v1.
	e.repo.Git("checkout", "-q", "-b", "fork", v1)
	e.repo.Write("apps/app.yaml", envPod(ns, "app", "fork"))
	forked := e.repo.Commit("fork of v1")
	e.repo.Git("push", "-q", "-f", e.bare, "fork:refs/heads/main")
	refused("the forked mirror", forked)

	// The mirror back on the line of v2: followed again.
	e.repo.Git("checkout", "-q", "main")
	e.repo.Write("apps/app.yaml", envPod(ns, "app", "v3"))
	v3 := e.repo.Commit("v3")
	e.repo.Git("push", "-q", "-f", e.bare, "main:refs/heads/main")
	s = e.waitFor("v3 running", time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v3 && s.Pending == nil && s.LastError == nil && runningIn(s, prefix, "app")
	})
	if got := hc.ContainerEnv(ns, "app", "main", "VERSION"); got != "v3" {
		t.Fatalf("v3: app has VERSION=%q", got)
	}
	e.stop()
}

// TestAgentRegistryMirror runs an agent with no image dir whose image,
// named by its original Docker Hub name (kelpie-site-registry:1, that is
// docker.io/library/kelpie-site-registry:1), is only in a docker-registry
// on loopback given as --registry-mirror docker.io=URL: the pod runs the
// image pulled from there, which containerd then holds by its original
// name and digest.
func TestAgentRegistryMirror(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	reg := testenv.Registry(t)
	e, hc := newAgentHost(t, addr, "site")
	ns := fmt.Sprintf("registry%d", hc.Octet)
	prefix := hc.SubnetPrefix()
	e.flags = setFlag(e.flags, "--image-dir", "")

	// Pushed as library/kelpie-site-registry:1; the manifest names it as
	// Docker Hub users do, "kelpie-site-registry:1".
	img := pageImage("docker.io/library/kelpie-site-registry:1", "served from the site registry\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testimage.Push(ctx, reg, img); err != nil {
		t.Fatal(err)
	}
	want, _, err := testimage.Manifest(img)
	if err != nil {
		t.Fatal(err)
	}

	v1 := e.push("v1", map[string]string{"site.yaml": mirrorDeployment(ns, "site", "kelpie-site-registry:1", 1)})
	e.startRepo(e.bare, "--interval", "1h", "--registry-mirror", "docker.io="+reg)
	start := time.Now()
	s := e.waitFor("v1 running", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && runningIn(s, prefix, "site-0")
	})
	t.Logf("pod running %.1fs after the agent started (image pulled from %s)", time.Since(start).Seconds(), reg)
	if body, err := agentGet(podIP(s, "site-0")); err != nil || body != "served from the site registry\n" {
		t.Fatalf("GET site-0: %v %q", err, body)
	}
	if got := hc.ImageDigest(img.Name); got != want.Digest.String() {
		t.Fatalf("containerd holds %s at %q, want %s", img.Name, got, want.Digest)
	}
	if testing.Verbose() {
		t.Logf("agent log:\n%s", e.log)
	}
	e.stop()
}

// TestAgentMirrorArrivesLater starts an agent on a mirror directory that
// does not exist yet (the USB stick has not come): it reports the fetch
// error and keeps going; the first `kelpie mirror import` creates the
// mirror, the agent's ref watch finds the repository and the commit runs
// with its image from the mirror.
func TestAgentMirrorArrivesLater(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	e, hc := newAgentHost(t, addr, "site")
	ns := fmt.Sprintf("later%d", hc.Octet)
	prefix := hc.SubnetPrefix()
	dir := filepath.Join(t.TempDir(), "mirror")
	e.flags = setFlag(e.flags, "--image-dir", filepath.Join(dir, mirror.ImagesDir))
	srcImages := t.TempDir()
	for _, s := range testimage.Standard() {
		if _, err := testimage.Build(srcImages, s); err != nil {
			t.Fatal(err)
		}
	}

	e.repo.Write("apps/app.yaml", envPod(ns, "app", "v1"))
	v1 := e.repo.Commit("v1")
	bundle := filepath.Join(t.TempDir(), "site.kbundle")
	if res := runMain(t, "mirror", "create", "--repo", e.repo.Dir, "--path", "apps", "--out", bundle, "--image-dir", srcImages); res.code != 0 {
		t.Fatalf("mirror create: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	e.startRepo(filepath.Join(dir, mirror.RepoDir), "--interval", "1h",
		"--registry-mirror", "docker.io=http://"+freeAddr(t))
	s := e.waitFor("the missing mirror reported", time.Minute, func(s agent.Status) bool {
		return s.LastError != nil && s.LastError.Kind == agent.KindFetch
	})
	t.Logf("before the mirror exists: %s", s.LastError.Message)
	if s.Applied != nil || len(s.Pods) != 0 {
		t.Fatalf("before the mirror exists: applied %+v, pods %+v", s.Applied, s.Pods)
	}

	if res := runMain(t, "mirror", "import", bundle, "--dir", dir); res.code != 0 {
		t.Fatalf("mirror import: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	start := time.Now()
	s = e.waitFor("v1 running", time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && s.LastError == nil && runningIn(s, prefix, "app")
	})
	t.Logf("NUMBER first import→running: %.2fs (sync %d %q)", time.Since(start).Seconds(), s.LastSync.Seq, s.LastSync.Reason)
	if testing.Verbose() {
		t.Logf("agent log:\n%s", e.log)
	}
	e.stop()
}
