package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// TestAgentSOPS runs `kelpie agent --age-key-file` on a private host
// against the real containerd. v1 holds a Secret encrypted by the real
// sops, consumed as an environment variable and a volume: the pod sees the
// plaintext. v2 re-encrypts the Secret for another key only: the commit is
// refused as a whole (file and line in status) and the host keeps running
// v1. Neither the agent's log nor its status holds a plaintext value.
func TestAgentSOPS(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	e, hc := newAgentHost(t, addr, "sops")
	ns := fmt.Sprintf("sops%d", hc.Octet)
	prefix := hc.SubnetPrefix()

	ours, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keyFile, []byte(ours.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const v1Password, v2Password, token = "pw-agent-v1-5e1b", "pw-agent-v2-c08d", "tok-agent-a9f2"
	secret := func(password string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: " + ns + "}\nstringData:\n  password: " + password + "\n  token: " + token + "\n"
	}
	pod := `apiVersion: v1
kind: Pod
metadata: {name: consumer, namespace: ` + ns + `}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "printf '%s|%s' \"$PASSWORD\" \"$(cat /creds/token)\" | sha256sum; exec sleep 3600"]
    env:
    - name: PASSWORD
      valueFrom:
        secretKeyRef: {name: creds, key: password}
    volumeMounts: [{name: creds, mountPath: /creds, readOnly: true}]
  volumes:
  - name: creds
    secret: {secretName: creds}
`
	regex := []string{"--encrypted-regex", "^(data|stringData)$"}
	v1 := e.push("v1: encrypted credentials", map[string]string{
		"secret.yaml": sopsEncrypt(t, secret(v1Password), ours.Recipient().String(), regex...),
		"pod.yaml":    pod,
	})
	e.start("--age-key-file", keyFile)
	e.waitFor("v1 running", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && runningIn(s, prefix, "consumer")
	})
	sum := sha256.Sum256([]byte(v1Password + "|" + token))
	want := hex.EncodeToString(sum[:])
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := runMain(t, append([]string{"logs", ns + "/consumer"}, runtimeOnly(e.flags)...)...)
		if res.code == 0 && strings.Contains(res.stdout, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod did not see the plaintext (want digest %s): exit %d\n%s%s\nagent log:\n%s", want, res.code, res.stdout, res.stderr, e.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	before := e.pods()

	v2 := e.push("v2: credentials for another key", map[string]string{
		"secret.yaml": sopsEncrypt(t, secret(v2Password), theirs.Recipient().String(), regex...),
		"pod.yaml":    pod,
	})
	s := e.waitFor("v2 refused", time.Minute, func(s agent.Status) bool {
		return s.Pending != nil && s.Pending.Hash == v2 && s.LastError != nil
	})
	if s.Applied == nil || s.Applied.Hash != v1 || s.LastError.Kind != agent.KindInvalid || len(s.LastError.Errors) != 1 {
		t.Fatalf("v2: applied %v, lastError %+v", s.Applied, s.LastError)
	}
	if me := s.LastError.Errors[0]; me.File != "apps/secret.yaml" || me.Line == 0 || me.Field != "sops" ||
		!strings.Contains(me.Message, "no key in the age key file can decrypt this file: it is encrypted for "+theirs.Recipient().String()) {
		t.Errorf("v2: manifest error %+v", me)
	}
	if after := e.pods(); !samePods(before, after) {
		t.Fatalf("the refused commit changed the host:\nbefore %+v\nafter  %+v", before, after)
	}
	status, _ := json.Marshal(s)
	text := runMain(t, "status", "--agent", e.listen)
	e.stop()
	for i := 0; i+1 < len(e.flags); i++ {
		if e.flags[i] == "--state-dir" {
			if n := noPlaintextOnDisk(t, e.flags[i+1], []string{v1Password, v2Password, token}); n == 0 {
				t.Error("no secret volume file found on a tmpfs: the disk check looked in the wrong place")
			}
		}
	}
	for _, out := range []string{string(status), text.stdout, text.stderr, e.log.String()} {
		for _, secret := range []string{v1Password, v2Password, token} {
			if strings.Contains(out, secret) {
				t.Errorf("the agent shows the secret value %q:\n%s", secret, out)
			}
		}
	}
}
