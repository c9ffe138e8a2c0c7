package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
)

// peerPod is a Pod for the hosts labelled role=ROLE, whose VERSION
// variable is version; command "" keeps the image's own.
func peerPod(ns, name, role, image, command, version string) string {
	return testenv.Pod{Name: name, Namespace: ns, Container: testenv.Container{Image: image, Command: command,
		Version: version, Grace: new(0), NodeSelector: map[string]string{"role": role}}}.YAML()
}

// TestAgentPeerMirror runs two agents, each its own process on a private
// host. A follows a bare repository on disk and has the test images in its
// image dir; it serves peers (--serve-mirror --mirror-token). B's only
// sources are A: --repo A's /mirror/git/repo.git and --registry-mirror
// docker.io=A's /mirror, both with the token in the URL, and no image dir.
//
// B runs its pod (nginx, an image A has in its image dir but does not run)
// at the commit A applied; a push to A's repository reaches B through A
// (B polls every second). Restarted with a wrong token, B reports the
// fetch error, keeps the last commit running, and never shows the token.
func TestAgentPeerMirror(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	a, hcA := newAgentHost(t, addr, "site")
	b, hcB := newAgentHost(t, addr, "site")
	b.flags = setFlag(b.flags, "--image-dir", "")
	ns := fmt.Sprintf("peer%d", hcA.Octet)
	const token = "peer-sync-token-0123456789"

	files := func(version string) map[string]string {
		return map[string]string{"peer.yaml": peerPod(ns, "a-app", "a", "busybox:1.36", `"sleep", "3600"`, version) +
			"---\n" + peerPod(ns, "b-app", "b", "nginx:1.7.9", "", version)}
	}
	v1 := a.push("v1", files("v1"))
	a.startRepo(a.bare, "--interval", "1h", "--labels", "role=a", "--serve-mirror", "--mirror-token", token)
	a.waitFor("A runs v1", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && runningIn(s, hcA.SubnetPrefix(), "a-app")
	})

	peerRepo := func(tok string) string { return "http://kelpie:" + tok + "@" + a.listen + agent.MirrorRepoPath }
	peerRegistry := func(tok string) string {
		return "docker.io=http://kelpie:" + tok + "@" + a.listen + agent.MirrorRegistryPath
	}
	start := time.Now()
	b.startRepo(peerRepo(token), "--interval", "1s", "--labels", "role=b", "--registry-mirror", peerRegistry(token))
	b.waitFor("B runs v1 from A", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && s.LastError == nil && runningIn(s, hcB.SubnetPrefix(), "b-app")
	})
	t.Logf("B ran v1 %.1fs after it started, from A alone", time.Since(start).Seconds())
	want, _, err := testimage.Manifest(testimage.Nginx())
	if err != nil {
		t.Fatal(err)
	}
	if got := hcB.ImageDigest(testimage.NginxRef); got != want.Digest.String() {
		t.Fatalf("B holds %s at %q, want %s (pulled through A)", testimage.NginxRef, got, want.Digest)
	}

	// A push to A's repository: A applies it (ref watch), B follows.
	v2 := a.push("v2", files("v2"))
	start = time.Now()
	b.waitFor("B runs v2", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v2 && s.LastError == nil && runningIn(s, hcB.SubnetPrefix(), "b-app")
	})
	t.Logf("B ran v2 %.1fs after the push to A", time.Since(start).Seconds())
	if got := hcB.ContainerEnv(ns, "b-app", "main", "VERSION"); got != "v2" {
		t.Fatalf("B's b-app has VERSION=%q, want v2", got)
	}
	b.stop()

	// A wrong token: B fails to fetch, says so, and runs v2 still while A
	// moves on to v3.
	const wrong = "wrong-token-0123456789"
	b.startRepo(peerRepo(wrong), "--interval", "1s", "--labels", "role=b", "--registry-mirror", peerRegistry(wrong))
	v3 := a.push("v3", files("v3"))
	a.waitFor("A runs v3", time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v3 && runningIn(s, hcA.SubnetPrefix(), "a-app")
	})
	served := time.Now()
	s := b.waitFor("B's poll after A served v3 fails", time.Minute, func(s agent.Status) bool {
		return s.LastError != nil && s.LastError.Kind == agent.KindFetch && s.LastSync != nil && s.LastSync.Time.After(served)
	})
	if !strings.Contains(s.LastError.Message, "authentication required") {
		t.Errorf("B's error = %q, want authentication required", s.LastError.Message)
	}
	if s.Applied == nil || s.Applied.Hash != v2 || !runningIn(s, hcB.SubnetPrefix(), "b-app") {
		t.Fatalf("B after the refused fetch: applied %+v, pods %+v; want v2 running", s.Applied, s.Pods)
	}
	if got := hcB.ContainerEnv(ns, "b-app", "main", "VERSION"); got != "v2" {
		t.Fatalf("B's b-app has VERSION=%q, want v2", got)
	}
	b.stop()
	a.stop()
	for name, log := range map[string]string{"A": a.log.String(), "B": b.log.String()} {
		for _, secret := range []string{token, wrong} {
			if strings.Contains(log, secret) {
				t.Errorf("agent %s's log shows a token:\n%s", name, log)
			}
		}
	}
	if testing.Verbose() {
		t.Logf("agent A log:\n%s\nagent B log:\n%s", a.log, b.log)
	}
}
