package cli

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/sys/unix"
)

// TestApplySOPSEndToEnd applies SOPS-encrypted manifests (encrypted by the
// real sops for a key made here) to a real containerd: a Secret consumed
// as an environment variable and as a volume, and a Pod whose own env value
// is encrypted. The pod prints a digest of what it sees, which must be the
// digest of the plaintext; no kelpie output and no file of the state dir
// outside a tmpfs holds a plaintext value.
func TestApplySOPSEndToEnd(t *testing.T) {
	h := newHostEnv(t, "10.248.37.0/24")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keyFile, []byte("# public key: "+id.Recipient().String()+"\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const password, token, apiKey = "pw-e2e-9f3a", "tok-e2e-41c7", "key-e2e-7d20"
	secrets := []string{password, token, apiKey, base64.StdEncoding.EncodeToString([]byte(token))}

	secret := `apiVersion: v1
kind: Secret
metadata: {name: app-secret, namespace: clitest}
stringData:
  password: ` + password + `
data:
  token: ` + base64.StdEncoding.EncodeToString([]byte(token)) + `
`
	pod := `apiVersion: v1
kind: Pod
metadata: {name: consumer, namespace: clitest}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "printf '%s|%s|%s' \"$DB_PASSWORD\" \"$(cat /secret/token)\" \"$API_KEY\" | sha256sum; exec sleep 3600"]
    env:
    - name: API_KEY
      value: ` + apiKey + `
    - name: DB_PASSWORD
      valueFrom:
        secretKeyRef: {name: app-secret, key: password}
    volumeMounts: [{name: s, mountPath: /secret, readOnly: true}]
  volumes:
  - name: s
    secret: {secretName: app-secret}
`
	recipient := id.Recipient().String()
	files := map[string]string{
		"secret.yaml": sopsEncrypt(t, secret, recipient, "--encrypted-regex", "^(data|stringData)$"),
		"pod.yaml":    sopsEncrypt(t, pod, recipient, "--encrypted-regex", "^value$"),
	}
	for name, text := range files {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Fatalf("sops left %q in clear in %s", s, name)
			}
		}
		if err := os.WriteFile(filepath.Join(h.manifest, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	res := h.run("plan")
	if res.code != 1 || !strings.Contains(res.stderr, "no age key was given to decrypt it (--age-key-file)") {
		t.Fatalf("plan without the key: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var outputs []string
	res = h.run("plan", "--age-key-file", keyFile)
	outputs = append(outputs, res.stdout, res.stderr)
	if res.code != 2 || !strings.Contains(res.stdout, "+ create pod clitest/consumer") {
		t.Fatalf("plan: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = h.run("apply", "--age-key-file", keyFile)
	outputs = append(outputs, res.stdout, res.stderr)
	if res.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	sum := sha256.Sum256([]byte(password + "|" + token + "|" + apiKey))
	want := hex.EncodeToString(sum[:])
	deadline := time.Now().Add(15 * time.Second)
	for {
		res = h.run("logs", "clitest/consumer")
		if res.code == 0 && strings.Contains(res.stdout, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod did not see the plaintext (want digest %s): exit %d\n%s%s", want, res.code, res.stdout, res.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	res = h.run("plan", "--age-key-file", keyFile)
	outputs = append(outputs, res.stdout, res.stderr)
	if res.code != 0 {
		t.Errorf("plan after apply: exit %d, want 0 (nothing to do)\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = h.run("ps", "-o", "json")
	outputs = append(outputs, res.stdout, res.stderr)
	for _, o := range outputs {
		for _, s := range secrets {
			if strings.Contains(o, s) {
				t.Errorf("kelpie printed the secret value %q:\n%s", s, o)
			}
		}
	}

	if n := noPlaintextOnDisk(t, h.flagValue("--state-dir"), secrets); n == 0 {
		t.Error("no secret volume file found on a tmpfs: the disk check looked in the wrong place")
	}
}

// noPlaintextOnDisk fails the test when a file under dir outside a tmpfs
// (where Secret volumes live) holds one of the values, and returns how many
// files on a tmpfs hold one.
func noPlaintextOnDisk(t *testing.T, dir string, values []string) (onTmpfs int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, s := range values {
			if !strings.Contains(string(data), s) {
				continue
			}
			var st unix.Statfs_t
			if err := unix.Statfs(p, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
				t.Errorf("%s holds the secret value %q outside a tmpfs", p, s)
			} else {
				onTmpfs++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return onTmpfs
}
