package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// clusterPodIOManifest is one replica pinned to kc-b that fails its first
// run and says hello in the second.
func clusterPodIOManifest() string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: talker, namespace: ` + clusterE2EKubeNS + `}
spec:
  replicas: 1
  selector: {matchLabels: {app: talker}}
  template:
    metadata: {labels: {app: talker}}
    spec:
      nodeSelector: {kubernetes.io/hostname: kc-b}
      containers:
      - name: main
        image: "busybox:1.36"
        command: ["sh", "-c", "if [ -e /tmp/ran ]; then echo hello-from-b; echo second-line; sleep 3600; else touch /tmp/ran; echo first-run; exit 1; fi"]
`
}

// TestClusterLogsExecThroughPeer: on two hosts (real agents, containerd,
// CNI and git, in network namespaces), `kelpie logs --agent A` (with
// --tail and --previous: the pod restarted once) and `kelpie exec --agent
// A` reach a pod that runs on B: A forwards to B with the peer token, at
// the API address B advertises in its gossip metadata (B listens on
// another port than A, on 0.0.0.0). Without the API token the request is
// refused, and a forwarded request is never forwarded again.
func TestClusterLogsExecThroughPeer(t *testing.T) {
	c := newClusterE2E(t)
	repo := testenv.NewGitRepo(t)
	repo.Git("init", "-q", "--bare", "-b", "main", c.bare)
	c.push(repo, "a talker on kc-b", clusterPodIOManifest())
	a, b := c.addHost(0), c.addHost(1)
	// B's API listens on another port, on every address: A reaches it by
	// the API address B advertises in its gossip metadata, not by
	// assuming its own port.
	b.listen, b.port = fmt.Sprintf("0.0.0.0:%d", clusterE2EListen+1), clusterE2EListen+1
	all := []*clusterHost{a, b}
	for _, h := range all {
		h.start()
	}
	var pod string
	c.waitView("the talker running on kc-b, seen by kc-a", 3*time.Minute, all, func(v view) bool {
		pod = ""
		for _, p := range v.status[b.name].Pods {
			if p.Namespace == clusterE2EKubeNS && strings.HasPrefix(p.Name, "talker") && p.State == "Running" {
				pod = p.Name
			}
		}
		return pod != "" && len(v.status[a.name].Pods) == 0 && v.membersAlive(a.name, b.name)
	})
	agentA := a.apiBase()
	target := clusterE2EKubeNS + "/" + pod
	kelpie := func(stdin string, args ...string) (string, string, int) {
		cmd := exec.Command(c.bin, args...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), code
	}
	auth := []string{"--agent", agentA, "--api-token", e2eAPIToken}

	// The log, through A, both runs; the lines come in time (the pod may
	// have just started, and restarts once).
	const both = "first-run\nhello-from-b\nsecond-line\n"
	deadline := time.Now().Add(time.Minute)
	for {
		out, errOut, code := kelpie("", append([]string{"logs"}, append(auth, target)...)...)
		if code == 0 && out == both {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kelpie logs --agent A %s: exit %d, stdout %q, stderr %q\n%s", target, code, out, errOut, c.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, errOut, code := kelpie("", append([]string{"logs", "--tail", "1"}, append(auth, target)...)...); code != 0 || out != "second-line\n" {
		t.Errorf("kelpie logs --tail 1: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := kelpie("", append([]string{"logs", "--previous"}, append(auth, target)...)...); code != 0 || out != "first-run\n" {
		t.Errorf("kelpie logs --previous: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// --since goes through A to B: it filters, then --tail picks; a time
	// ahead gives nothing; a bad value names the flag.
	if out, errOut, code := kelpie("", append([]string{"logs", "--since", "10m", "--tail", "1"}, append(auth, target)...)...); code != 0 || out != "second-line\n" {
		t.Errorf("kelpie logs --since 10m --tail 1: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := kelpie("", append([]string{"logs", "--since", "2099-01-01T00:00:00Z"}, append(auth, target)...)...); code != 0 || out != "" {
		t.Errorf("kelpie logs --since a time ahead: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := kelpie("", append([]string{"logs", "--since", "yesterday"}, append(auth, target)...)...); code == 0 || !strings.Contains(errOut, "--since") {
		t.Errorf("kelpie logs --since yesterday: exit %d, stderr %q", code, errOut)
	}

	// Exec through A: output, stdin and the exit code.
	out, errOut, code := kelpie("", append([]string{"exec"}, append(auth, target, "--", "sh", "-c", "echo out; echo err >&2; exit 7")...)...)
	if code != 7 || out != "out\n" || errOut != "err\n" {
		t.Errorf("kelpie exec --agent A: exit %d, stdout %q, stderr %q, want 7, \"out\\n\", \"err\\n\"\n%s", code, out, errOut, c.logs())
	}
	out, errOut, code = kelpie("typed in\n", append([]string{"exec", "-i"}, append(auth, target, "--", "cat")...)...)
	if code != 0 || out != "typed in\n" {
		t.Errorf("kelpie exec -i --agent A cat: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Refused without the API token, by the CLI and on the wire.
	if _, errOut, code := kelpie("", "logs", "--agent", agentA, "--api-token-file", "/nonexistent", target); code == 0 || !strings.Contains(errOut, "401") {
		t.Errorf("kelpie logs without a token: exit %d, stderr %q", code, errOut)
	}
	get := func(url string, header map[string]string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	logURL := agentA + "/api/v1/pods/" + target + "/log"
	if code, body := get(logURL, nil); code != http.StatusUnauthorized {
		t.Errorf("log without a token: %d %s, want 401", code, body)
	}
	if code, body := get(logURL, map[string]string{"Authorization": "Bearer wrong-token-wrong-token"}); code != http.StatusUnauthorized {
		t.Errorf("log with a wrong token: %d %s, want 401", code, body)
	}
	keys, err := gossip.ParseKeys(c.key)
	if err != nil {
		t.Fatal(err)
	}
	peer := agent.MirrorTokenFromKey(keys[0])
	// The peer token opens the log on the host that runs the pod ...
	if code, body := get(b.apiBase()+"/api/v1/pods/"+target+"/log", map[string]string{"Authorization": "Bearer " + peer}); code != http.StatusOK || body != both {
		t.Errorf("log on B with the peer token: %d %q", code, body)
	}
	// ... but a forwarded request is not forwarded again.
	code2, body := get(logURL, map[string]string{"Authorization": "Bearer " + peer, "X-Kelpie-Forwarded-By": "kc-x"})
	if code2 != http.StatusNotFound || !strings.Contains(body, "forwarded") {
		t.Errorf("a forwarded request to A for a pod on B: %d %q, want 404 saying it was forwarded", code2, body)
	}
}
